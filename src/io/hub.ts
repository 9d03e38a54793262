// Hub download cache: files of a Hugging Face-style repo fetched once into
// <cache>/<org>--<name>/<revision>/<file>, resumable, size- and sha256-checked, locked against
// concurrent downloaders, and usable offline afterwards.

import { createHash } from 'node:crypto';
import { closeSync, createReadStream, createWriteStream, mkdirSync, openSync, readFileSync, renameSync, rmSync, statSync, utimesSync, writeSync } from 'node:fs';
import { homedir, hostname } from 'node:os';
import { join } from 'node:path';
import cliProgress from 'cli-progress';
import { HubError } from '../errors.ts';
import { atomicWrite, pidAlive } from './files.ts';

export const DEFAULT_ENDPOINT = 'https://huggingface.co';
const COMPLETE = '.complete.json';

export interface HubOptions {
  cacheDir?: string;
  endpoint?: string;
  offline?: boolean;
  progress?: boolean;
  revision?: string;
  /** No response headers, or less than 1 KiB of body, for this long → the attempt fails (ms; default 30 s). */
  timeoutMs?: number;
  /**
   * Every file must be downloaded within this long, retries included (ms). Default: env
   * CLIPLENS_HUB_DEADLINE (seconds), else 30 min plus the time the file takes at 128 KiB/s.
   */
  deadlineMs?: number;
}

export interface HubFile {
  name: string;
  /** Absent on the hub is fine (recorded, not re-asked). */
  optional?: boolean;
}

/** The repo, or a required file in it, does not exist on the hub. */
export class HubNotFoundError extends HubError {
  constructor(message: string, readonly file: string, readonly status: number) {
    super(message);
    this.name = 'HubNotFoundError';
  }
}

export function hubEndpoint(opt?: string): string {
  const e = opt || process.env.CLIPLENS_HUB_ENDPOINT || process.env.HF_ENDPOINT || DEFAULT_ENDPOINT;
  return e.replace(/\/+$/, '');
}

export function hubCacheDir(opt?: string): string {
  return opt || process.env.CLIPLENS_CACHE || join(homedir(), '.cache', 'cliplens', 'hub');
}

export function isOffline(opt?: boolean): boolean {
  if (opt !== undefined) return opt;
  const v = process.env.CLIPLENS_OFFLINE;
  return v !== undefined && v !== '' && v !== '0' && v.toLowerCase() !== 'false';
}

const REPO_ID = /^[A-Za-z0-9][\w.-]*\/[A-Za-z0-9][\w.-]*$/;
const REVISION = /^[\w.-]+$/;

export function isRepoId(s: string): boolean {
  return REPO_ID.test(s) && !s.includes('..');
}

function checkIds(repo: string, revision: string): void {
  if (!isRepoId(repo)) throw new HubError(`'${repo}' is not a valid hub id (expected org/name of letters, digits, '-', '_', '.')`);
  if (!REVISION.test(revision) || revision.includes('..')) throw new HubError(`'${revision}' is not a supported revision (letters, digits, '-', '_', '.')`);
}

/** Where a repo revision lives in the cache. */
export function repoCacheDir(repo: string, opts: { cacheDir?: string; revision?: string } = {}): string {
  const revision = opts.revision ?? 'main';
  checkIds(repo, revision);
  return join(hubCacheDir(opts.cacheDir), repo.replace('/', '--'), revision);
}

/** file name → size in bytes, or null for an optional file the hub does not have. */
type SizeRecord = Record<string, number | null>;

function readRecord(dir: string): SizeRecord {
  try {
    const r = JSON.parse(readFileSync(join(dir, COMPLETE), 'utf8')) as { files?: unknown };
    return r.files && typeof r.files === 'object' ? (r.files as SizeRecord) : {};
  } catch {
    return {};
  }
}

function writeRecord(dir: string, repo: string, revision: string, files: SizeRecord): void {
  atomicWrite(join(dir, COMPLETE), JSON.stringify({ repo, revision, files }, null, 1), 'hub cache record');
}

function sizeOf(path: string): number | undefined {
  try {
    return statSync(path).size;
  } catch {
    return undefined;
  }
}

type CacheState = { kind: 'ok' } | { kind: 'absent' } | { kind: 'missing' } | { kind: 'bad'; why: string };

/** A file renamed into place was complete when written; the record catches later truncation. */
function cacheState(dir: string, rec: SizeRecord, f: HubFile): CacheState {
  const size = sizeOf(join(dir, f.name));
  const want = rec[f.name];
  if (size === undefined) return want === null && f.optional ? { kind: 'absent' } : { kind: 'missing' };
  if (typeof want === 'number' && want !== size) return { kind: 'bad', why: `${f.name} is ${size} bytes but was downloaded as ${want}` };
  return { kind: 'ok' };
}

export interface CachedRepo {
  dir: string;
  /** Local paths of the files present (optional ones the hub lacks are left out). */
  files: Record<string, string>;
}

function present(dir: string, rec: SizeRecord, files: HubFile[]): CachedRepo {
  const out: Record<string, string> = {};
  for (const f of files) if (cacheState(dir, rec, f).kind === 'ok') out[f.name] = join(dir, f.name);
  return { dir, files: out };
}

/** The cached copy when every file is there (no network); otherwise undefined. */
export function cachedRepo(repo: string, files: HubFile[], opts: HubOptions = {}): CachedRepo | undefined {
  const dir = repoCacheDir(repo, opts);
  const rec = readRecord(dir);
  const offline = isOffline(opts.offline);
  // Offline, an optional file we never heard about is simply treated as absent.
  const ok = files.every((f) => {
    const s = cacheState(dir, rec, f).kind;
    return s === 'ok' || s === 'absent' || (offline && s === 'missing' && f.optional);
  });
  return ok ? present(dir, rec, files) : undefined;
}

/**
 * Make `files` of `repo` available locally, downloading only what the cache lacks.
 * The first file is the one whose 404 means "no such repo".
 */
export async function fetchRepoFiles(repo: string, files: HubFile[], opts: HubOptions = {}): Promise<CachedRepo> {
  const revision = opts.revision ?? 'main';
  const dir = repoCacheDir(repo, opts);
  const hit = cachedRepo(repo, files, opts);
  if (hit) return hit;
  const endpoint = hubEndpoint(opts.endpoint);
  const rec = readRecord(dir);
  if (isOffline(opts.offline)) {
    const problems = files
      .map((f) => [f, cacheState(dir, rec, f)] as const)
      .filter(([f, s]) => s.kind === 'bad' || (s.kind === 'missing' && !f.optional))
      .map(([f, s]) => (s.kind === 'bad' ? s.why : `${f.name} missing`));
    throw new HubError(`offline: hub id ${repo} (revision ${revision}) is not fully cached in ${dir} (${problems.join('; ')}); run once with network access (without --offline / CLIPLENS_OFFLINE)`);
  }
  mkdirSync(dir, { recursive: true });
  const lock = await acquireLock(dir, `${repo} (revision ${revision})`, opts.progress ?? false);
  try {
    // Another process may have finished some files while we waited for the lock.
    return await downloadMissing(repo, revision, dir, files, endpoint, opts);
  } finally {
    lock.release();
  }
}

async function downloadMissing(repo: string, revision: string, dir: string, files: HubFile[], endpoint: string, opts: HubOptions): Promise<CachedRepo> {
  const rec = readRecord(dir);
  for (const [i, f] of files.entries()) {
    const state = cacheState(dir, rec, f);
    if (state.kind === 'ok' || state.kind === 'absent') continue;
    if (state.kind === 'bad') rmSync(join(dir, f.name), { force: true });
    const url = `${endpoint}/${repo}/resolve/${encodeURIComponent(revision)}/${f.name}`;
    const size = await downloadFile(url, join(dir, f.name), {
      label: `${repo}/${f.name}`, repo, endpoint, progress: opts.progress ?? false, timeoutMs: opts.timeoutMs ?? 30_000, first: i === 0, optional: f.optional ?? false,
      deadlineMs: opts.deadlineMs ?? deadlineFromEnv(),
    });
    rec[f.name] = size;
    writeRecord(dir, repo, revision, rec);
  }
  return present(dir, rec, files);
}

const LOCK = '.lock';
/** A lock whose holder has not touched it for this long is taken over (the holder touches it every few seconds). */
const LOCK_STALE_MS = 30_000;
const LOCK_HEARTBEAT_MS = 5_000;
const LOCK_POLL_MS = 200;

interface LockInfo {
  pid: number;
  host: string;
}

/** Why the lock at `path` may be taken over, or undefined while its holder looks alive. */
function staleLock(path: string): string | undefined {
  let info: Partial<LockInfo> = {};
  let mtime: number;
  try {
    mtime = statSync(path).mtimeMs;
    info = JSON.parse(readFileSync(path, 'utf8')) as Partial<LockInfo>;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 'gone';
    // Empty or torn: a holder between creating and writing it (young), or killed there (old).
    mtime ??= 0;
  }
  if (info.host === hostname() && typeof info.pid === 'number' && !pidAlive(info.pid)) return `process ${info.pid} is gone`;
  if (Date.now() - mtime > LOCK_STALE_MS) return `not touched for ${LOCK_STALE_MS / 1000}s`;
  return undefined;
}

/**
 * One downloader per cached repo revision: the lock file names its holder, who touches it while
 * working; waiters take it over once the holder is dead or silent.
 */
async function acquireLock(dir: string, what: string, progress: boolean): Promise<{ release(): void }> {
  const path = join(dir, LOCK);
  let told = false;
  for (;;) {
    try {
      const fd = openSync(path, 'wx');
      writeSync(fd, JSON.stringify({ pid: process.pid, host: hostname() } satisfies LockInfo));
      closeSync(fd);
      const beat = setInterval(() => {
        try {
          const now = new Date();
          utimesSync(path, now, now);
        } catch {
          /* removed by a waiter that judged us stale; nothing to do but finish */
        }
      }, LOCK_HEARTBEAT_MS);
      beat.unref();
      return {
        release: () => {
          clearInterval(beat);
          rmSync(path, { force: true });
        },
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw new HubError(`cannot create the download lock ${path}: ${(e as Error).message}`);
    }
    const stale = staleLock(path);
    if (stale) {
      if (stale !== 'gone') rmSync(path, { force: true });
      continue;
    }
    if (progress && !told) {
      told = true;
      process.stderr.write(`waiting for another cliplens process downloading ${what} (lock ${path})\n`);
    }
    await new Promise((r) => setTimeout(r, LOCK_POLL_MS));
  }
}

interface DlOpts {
  label: string;
  repo: string;
  endpoint: string;
  progress: boolean;
  timeoutMs: number;
  /** Overall limit for this file, retries included (ms); undefined = 30 min + size at 128 KiB/s. */
  deadlineMs?: number;
  first: boolean;
  optional: boolean;
  /** Set once the non-TTY line for this file is printed, so retries stay quiet. */
  announced?: boolean;
  /** The hub's sha256 of an LFS file (x-linked-etag), seen on any hop of any attempt. */
  sha256?: string;
  /** The file's full size, once any answer announced it (Content-Length, Content-Range, x-linked-size). */
  size?: number;
}

const MAX_ATTEMPTS = 4;
/** Less than this much body within timeoutMs counts as a stall (a server dripping bytes never resets the clock). */
const MIN_PROGRESS = 1024;
const BASE_DEADLINE_MS = 30 * 60_000;
const DEADLINE_RATE = 128 * 1024; // bytes/s allowed on top of the base

function deadlineFromEnv(): number | undefined {
  const v = process.env.CLIPLENS_HUB_DEADLINE;
  if (v === undefined || v === '') return undefined;
  const s = Number(v);
  if (!(s > 0)) throw new HubError(`CLIPLENS_HUB_DEADLINE must be a positive number of seconds, got '${v}'`);
  return s * 1000;
}

class Retryable extends Error {}

/** The per-file deadline passed: not retried (the clock covers every attempt). */
class DeadlineExceeded extends HubError {}

const secs = (ms: number) => `${+(ms / 1000).toFixed(1)}s`;

/**
 * Download to `${dest}.incomplete`, resuming it, then rename. Returns the size, or null for an
 * absent optional file. A download becomes the cached file only when its size is known (from any
 * answer, or a HEAD asked afterwards) and matches, or its announced sha256 matches; otherwise it
 * stays `.incomplete` and the error says why.
 */
async function downloadFile(url: string, dest: string, o: DlOpts): Promise<number | null> {
  const part = `${dest}.incomplete`;
  const started = Date.now();
  const limitMs = () => o.deadlineMs ?? BASE_DEADLINE_MS + ((o.size ?? 0) / DEADLINE_RATE) * 1000;
  const deadline = { at: () => started + limitMs(), ms: limitMs };
  const kept = () => {
    const have = sizeOf(part);
    return have ? ` (${have} bytes kept in ${part}; the next run resumes)` : '';
  };
  let lastErr: Error | undefined;
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    const before = sizeOf(part) ?? 0;
    try {
      const r = await attemptDownload(url, part, o, deadline);
      if (r === null) return null;
      if (o.sha256) {
        const got = await sha256File(part);
        if (got !== o.sha256) {
          rmSync(part, { force: true });
          throw new HubError(`checksum mismatch for ${o.label}: the hub says sha256 ${o.sha256} but the download has ${got}; not caching it`);
        }
      } else if (o.size === undefined) {
        throw new HubError(
          `cannot tell whether ${o.label} is complete: ${o.endpoint} sent it without a length (Content-Length, Content-Range or x-linked-size, also on a HEAD request) and without a sha256 (x-linked-etag), so a cut connection looks like the end of the file; not caching it${kept().replace('; the next run resumes', '')}`,
        );
      } else if (r !== o.size) {
        // The body ended early (or ran long) against a size learnt only afterwards.
        if (r > o.size) {
          rmSync(part, { force: true });
          throw new HubError(`size mismatch for ${o.label}: received ${r} bytes but the hub says the file has ${o.size}; not caching it`);
        }
        throw new Retryable(`connection closed after ${r} of ${o.size} bytes`);
      }
      renameSync(part, dest);
      return r;
    } catch (e) {
      if (e instanceof DeadlineExceeded) throw new HubError(`${e.message}${kept()}`);
      if (!(e instanceof Retryable)) throw e;
      lastErr = e;
      // Give up early on failures that make no progress (host down, refusing, dripping), keep going while data arrives.
      if ((sizeOf(part) ?? 0) < before + MIN_PROGRESS && attempt >= 1) break;
      await new Promise((r) => setTimeout(r, 100 * (attempt + 1)));
    }
  }
  throw new HubError(
    `cannot download ${o.label} from ${o.endpoint}: ${lastErr?.message}${kept()}` +
      '; check the network or CLIPLENS_HUB_ENDPOINT/HF_ENDPOINT, or use an already cached model with --offline / CLIPLENS_OFFLINE=1',
  );
}

function causeOf(e: unknown): string {
  const err = e as Error & { cause?: { code?: string; message?: string } };
  return err.cause?.code ?? err.cause?.message ?? err.message;
}

/**
 * GET or HEAD `url`, following redirects by hand: the hub puts an LFS file's size and sha256 on the
 * redirect, not on the CDN's answer. Records any announced sha256 and size in `o`.
 */
async function requestFollowing(url: string, method: 'GET' | 'HEAD', headers: Record<string, string>, signal: AbortSignal, o: DlOpts): Promise<{ res: Response; linkedSize?: number }> {
  let at = url;
  let linkedSize: number | undefined;
  for (let hop = 0; ; hop++) {
    const res = await fetch(at, { method, headers, signal, redirect: 'manual' });
    const ls = res.headers.get('x-linked-size');
    if (ls !== null && linkedSize === undefined) {
      const v = Number(ls);
      if (!Number.isSafeInteger(v) || v < 0) throw new HubError(`size mismatch for ${o.label}: bad x-linked-size header '${ls}'`);
      linkedSize = v;
    }
    const etag = /^(?:W\/)?"?([0-9a-f]{64})"?$/i.exec(res.headers.get('x-linked-etag') ?? '');
    if (etag) o.sha256 ??= etag[1].toLowerCase();
    const location = res.headers.get('location');
    if (res.status < 300 || res.status >= 400 || !location) return { res, linkedSize };
    if (hop >= 10) throw new HubError(`downloading ${o.label} from ${url} failed: more than 10 redirects`);
    await res.body?.cancel();
    at = new URL(location, at).href;
  }
}

/** The length of an identity-encoded 200 answer, if it states one. */
function contentLength(res: Response): number | undefined {
  const len = res.headers.get('content-length');
  const enc = res.headers.get('content-encoding');
  if (len === null || (enc && enc !== 'identity')) return undefined;
  const v = Number(len);
  return Number.isSafeInteger(v) && v >= 0 ? v : undefined;
}

/** One request. Throws Retryable for network trouble; HubError for answers that retrying cannot change. */
async function attemptDownload(url: string, part: string, o: DlOpts, deadline: { at(): number; ms(): number }): Promise<number | null> {
  const have = sizeOf(part) ?? 0;
  const ac = new AbortController();
  let why: 'idle' | 'deadline' | undefined;
  let idle: NodeJS.Timeout | undefined;
  let overall: NodeJS.Timeout | undefined;
  const abort = (w: 'idle' | 'deadline') => {
    why ??= w;
    ac.abort();
  };
  const arm = () => {
    clearTimeout(idle);
    idle = setTimeout(() => abort('idle'), o.timeoutMs);
  };
  const armDeadline = () => {
    clearTimeout(overall);
    overall = setTimeout(() => abort('deadline'), Math.max(0, deadline.at() - Date.now()));
  };
  const deadlineError = () => new DeadlineExceeded(`download of ${o.label} did not finish within ${secs(deadline.ms())} (the per-file deadline${o.deadlineMs === undefined ? '; CLIPLENS_HUB_DEADLINE sets it in seconds' : ''})`);
  const failure = (e: unknown, idleMsg: string, netMsg = `network error (${causeOf(e)})`) => {
    if (e instanceof HubError) return e;
    if (why === 'deadline') return deadlineError();
    return new Retryable(why === 'idle' ? idleMsg : netMsg);
  };
  if (Date.now() >= deadline.at()) throw deadlineError();
  arm();
  armDeadline();
  const headers: Record<string, string> = { 'accept-encoding': 'identity' };
  if (have > 0) headers.range = `bytes=${have}-`;
  let res: Response;
  let linkedSize: number | undefined;
  try {
    ({ res, linkedSize } = await requestFollowing(url, 'GET', headers, ac.signal, o));
  } catch (e) {
    clearTimeout(idle);
    clearTimeout(overall);
    throw failure(e, `no response within ${o.timeoutMs / 1000}s`);
  }
  try {
    if (res.status === 404) {
      if (o.optional) return null;
      const file = url.slice(url.lastIndexOf('/') + 1);
      throw new HubNotFoundError(
        o.first ? `hub id ${o.repo} not found at ${o.endpoint} (404)` : `hub id ${o.repo} at ${o.endpoint} has no file ${file} (404)`,
        file,
        404,
      );
    }
    if (res.status === 401 || res.status === 403) {
      throw new HubNotFoundError(`hub id ${o.repo} not found at ${o.endpoint} or needs authentication (${res.status}); private and gated repos are not supported, download them yourself and pass the directory`, url.slice(url.lastIndexOf('/') + 1), res.status);
    }
    if (res.status === 416) {
      // The partial is not a prefix the server recognises: start over.
      rmSync(part, { force: true });
      throw new Retryable('server refused to resume (416)');
    }
    if (res.status >= 500) throw new Retryable(`server error ${res.status}`);
    if (res.status !== 200 && res.status !== 206) throw new HubError(`downloading ${o.label} from ${url} failed: HTTP ${res.status}`);

    let start = 0;
    let total: number | undefined;
    if (res.status === 206) {
      const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(res.headers.get('content-range') ?? '');
      if (!m || Number(m[1]) !== have) {
        rmSync(part, { force: true });
        throw new Retryable(`server answered the resume request with an unexpected range (${res.headers.get('content-range')})`);
      }
      start = have;
      if (m[3] !== '*') total = Number(m[3]);
    } else {
      total = contentLength(res);
    }
    if (linkedSize !== undefined) {
      if (total !== undefined && linkedSize !== total) {
        throw new HubError(`size mismatch for ${o.label}: the hub says ${linkedSize} bytes (x-linked-size) but the response carries ${total}; not caching it`);
      }
      total = linkedSize;
    }
    if (total !== undefined && !Number.isSafeInteger(total)) throw new HubError(`size mismatch for ${o.label}: bad length header ${total}`);
    if (total !== undefined) {
      if (o.size !== undefined && o.size !== total) throw new HubError(`size mismatch for ${o.label}: one answer said ${o.size} bytes, another ${total}; not caching it`);
      o.size = total;
      armDeadline();
    }

    const bar = makeBar(o, total, start);
    const out = createWriteStream(part, { flags: start > 0 ? 'a' : 'w' });
    let written = start;
    let mark = start;
    try {
      if (!res.body) throw new Retryable('empty response body');
      const reader = res.body.getReader();
      for (;;) {
        let chunk: Awaited<ReturnType<typeof reader.read>>;
        try {
          chunk = await reader.read();
        } catch (e) {
          const stalled = written > mark ? `stalled: only ${written - mark} bytes in ${o.timeoutMs / 1000}s (at least ${MIN_PROGRESS} expected)` : `stalled: no data for ${o.timeoutMs / 1000}s`;
          throw failure(e, stalled, `connection lost after ${written} bytes (${causeOf(e)})`);
        }
        if (chunk.done) break;
        written += chunk.value.length;
        if (written - mark >= MIN_PROGRESS) {
          mark = written;
          arm();
        }
        if (total !== undefined && written > total) {
          throw new HubError(`size mismatch for ${o.label}: received more than the announced ${total} bytes`);
        }
        if (!out.write(chunk.value)) await new Promise<void>((r) => out.once('drain', () => r()));
        bar?.update(written);
      }
    } catch (e) {
      if (e instanceof HubError && !(e instanceof DeadlineExceeded)) rmSync(part, { force: true });
      throw e;
    } finally {
      await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
      bar?.stop();
    }
    if (total !== undefined && written !== total) throw new Retryable(`connection closed after ${written} of ${total} bytes`);
    if (total === undefined && !o.sha256) await learnSize(url, o, ac.signal);
    return written;
  } finally {
    clearTimeout(idle);
    clearTimeout(overall);
    ac.abort(); // releases the socket if the body was not consumed
  }
}

/** A body ended with neither a length nor a hash: ask the server (HEAD) what it should have been. */
async function learnSize(url: string, o: DlOpts, signal: AbortSignal): Promise<void> {
  try {
    const { res, linkedSize } = await requestFollowing(url, 'HEAD', { 'accept-encoding': 'identity' }, signal, o);
    await res.body?.cancel();
    const size = linkedSize ?? (res.status === 200 ? contentLength(res) : undefined);
    if (size !== undefined) o.size ??= size;
  } catch (e) {
    if (e instanceof HubError) throw e;
    // No answer: the size stays unknown and the caller refuses the file.
  }
}

async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

function fmtBytes(n: number): string {
  if (n >= 1 << 30) return `${(n / (1 << 30)).toFixed(2)} GiB`;
  if (n >= 1 << 20) return `${(n / (1 << 20)).toFixed(1)} MiB`;
  if (n >= 1 << 10) return `${(n / (1 << 10)).toFixed(1)} KiB`;
  return `${n} B`;
}

interface Bar {
  update(n: number): void;
  stop(): void;
}

/** A bar on a terminal; otherwise one line per file. */
function makeBar(o: DlOpts, total: number | undefined, start: number): Bar | undefined {
  if (!o.progress) return undefined;
  const what = `${start > 0 ? 'resuming' : 'downloading'} ${o.label}`;
  if (!process.stderr.isTTY || total === undefined) {
    if (o.announced) return undefined;
    o.announced = true;
    process.stderr.write(`${what}${total !== undefined ? ` (${fmtBytes(total)})` : ''}\n`);
    return undefined;
  }
  const bar = new cliProgress.SingleBar(
    { stream: process.stderr, format: `${o.label} [{bar}] {percentage}% | {have}/{size}`, hideCursor: true },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total, start, { have: fmtBytes(start), size: fmtBytes(total) });
  return { update: (n) => bar.update(n, { have: fmtBytes(n) }), stop: () => bar.stop() };
}
