// Files the user names, read and written with one-line errors: a missing file, a symbolic-link
// loop, a directory where a file belongs, text that is not UTF-8 (or UTF-16 with a BOM); and
// atomic writes (temp file + fsync + rename) that leave no temp file behind on any failure.
//
// Text encodings: UTF-8 with or without a BOM is read as is; UTF-16 (LE or BE) is decoded when it
// starts with its byte-order mark; UTF-16 without a BOM, UTF-32, other 8-bit encodings (Latin-1,
// cp1252) and binary files are refused with a line saying what the file looks like.

import { closeSync, fsyncSync, lstatSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { InputFileError, OutputFileError } from '../errors.ts';

/** What an fs error code means, in words (for messages that name the path themselves). */
export function fsProblem(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  switch (err?.code) {
    case 'ENOENT':
      return 'does not exist';
    case 'ELOOP':
      return 'is a symbolic link loop (following its links never reaches a file)';
    case 'EISDIR':
      return 'is a directory, not a file';
    case 'ENOTDIR':
      return 'does not exist (a part of its path is not a directory)';
    case 'EACCES':
    case 'EPERM':
      return 'is not accessible (permission denied)';
    case 'ENAMETOOLONG':
      return 'has a name too long for the file system';
    case 'ENOSPC':
      return 'could not be written: no space left on the device';
    case 'EDQUOT':
      return 'could not be written: disk quota exceeded';
    case 'EROFS':
      return 'could not be written: read-only file system';
    case 'EMFILE':
    case 'ENFILE':
      return 'could not be opened: too many open files';
    default:
      return `cannot be accessed (${err?.code ?? (err?.message ?? String(e)).split('\n')[0]})`;
  }
}

/** Why `path` cannot be used as a file (or a directory), or undefined when it can. */
export function pathProblem(path: string, kind: 'file' | 'directory' | 'any' = 'file'): string | undefined {
  let isDir: boolean;
  try {
    isDir = statSync(path).isDirectory();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
      try {
        if (lstatSync(path).isSymbolicLink()) return 'is a symbolic link to something that does not exist';
      } catch {
        /* not there at all */
      }
    }
    return fsProblem(e);
  }
  if (kind === 'file' && isDir) return 'is a directory, not a file';
  if (kind === 'directory' && !isDir) return 'is a file, not a directory';
  return undefined;
}

/** Throw `InputFileError('<what> <path> <problem>')` unless `path` is usable as `kind`. */
export function checkInputPath(path: string, what: string, kind: 'file' | 'directory' | 'any' = 'file'): void {
  const p = pathProblem(path, kind);
  if (p) throw new InputFileError(`${what} ${path} ${p}`);
}

/** A file's bytes, or InputFileError naming it. */
export function readInputFile(path: string, what: string): Buffer {
  checkInputPath(path, what);
  try {
    return readFileSync(path);
  } catch (e) {
    throw new InputFileError(`${what} ${path} ${fsProblem(e)}`);
  }
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });

/** Decode text bytes by their byte-order mark (see the header); `label` names the file in errors. */
export function decodeText(buf: Uint8Array, label: string): string {
  const b = buf;
  if ((b[0] === 0xff && b[1] === 0xfe && b[2] === 0 && b[3] === 0) || (b[0] === 0 && b[1] === 0 && b[2] === 0xfe && b[3] === 0xff)) {
    throw new InputFileError(`${label} is UTF-32 text; save it as UTF-8`);
  }
  for (const [bom, enc] of [[[0xff, 0xfe], 'utf-16le'], [[0xfe, 0xff], 'utf-16be']] as const) {
    if (b[0] === bom[0] && b[1] === bom[1]) {
      if ((b.length - 2) % 2 !== 0) throw new InputFileError(`${label} starts with a ${enc.toUpperCase()} byte-order mark but has an odd number of bytes (truncated?)`);
      try {
        return new TextDecoder(enc, { fatal: true }).decode(b.subarray(2));
      } catch {
        throw new InputFileError(`${label} starts with a ${enc.toUpperCase()} byte-order mark but is not valid ${enc.toUpperCase()} (unpaired surrogate)`);
      }
    }
  }
  const body = b[0] === 0xef && b[1] === 0xbb && b[2] === 0xbf ? b.subarray(3) : b;
  const nul = body.indexOf(0);
  if (nul >= 0) {
    // UTF-16 without a BOM puts a zero in every other byte of ASCII text.
    let even = 0;
    let odd = 0;
    const n = Math.min(body.length, 4096);
    for (let i = 0; i < n; i++) if (body[i] === 0) i % 2 ? odd++ : even++;
    if (Math.max(even, odd) > n / 4 && Math.min(even, odd) < Math.max(even, odd) / 8) {
      throw new InputFileError(`${label} looks like UTF-16 text without a byte-order mark; save it as UTF-8 (or UTF-16 with a BOM)`);
    }
    throw new InputFileError(`${label} contains NUL bytes (at byte ${nul + (body === b ? 0 : 3)}): a binary file, not text`);
  }
  try {
    return UTF8.decode(body);
  } catch {
    let line = 1;
    let start = 0;
    for (;;) {
      const nl = body.indexOf(0x0a, start);
      const end = nl < 0 ? body.length : nl;
      try {
        UTF8.decode(body.subarray(start, end));
      } catch {
        break;
      }
      if (nl < 0) break;
      line++;
      start = nl + 1;
    }
    throw new InputFileError(`${label} is not UTF-8 text (invalid byte sequence on line ${line}); save it as UTF-8`);
  }
}

/** A text file decoded (see the header), or InputFileError naming it. */
export function readTextFile(path: string, what = 'text file'): string {
  return decodeText(readInputFile(path, what), `${what} ${path}`);
}

/** The non-empty, trimmed lines of a text file. */
export function readLines(path: string, what = 'text file'): string[] {
  return readTextFile(path, what)
    .split(/\r\n|\r|\n/)
    .map((l) => l.trim())
    .filter((l) => l.length > 0);
}

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

const TMP_SUFFIX = /\.tmp-(\d+)$/;

/** The temp name atomicWrite uses for `path` in this process. */
export const tempPath = (path: string) => `${path}.tmp-${process.pid}`;

/**
 * A file written in place at any offsets and published atomically: a temp file beside `path`,
 * fsync, rename. On any failure (ENOSPC, EACCES, a missing folder, a failed rename) the temp file is
 * removed and OutputFileError names `path`; `abort()` removes it too.
 */
export class AtomicFile {
  private fd = -1;
  private readonly tmp: string;

  constructor(readonly path: string, private readonly what = 'file') {
    this.tmp = tempPath(path);
    this.guard(() => {
      this.fd = openSync(this.tmp, 'w');
    });
  }

  /** Write all of `bytes` at `position` (writeSync writes at most 2 GB per call). */
  writeAt(bytes: Uint8Array, position: number): void {
    this.guard(() => {
      for (let done = 0; done < bytes.length; ) done += writeSync(this.fd, bytes, done, Math.min(bytes.length - done, 1 << 30), position + done);
    });
  }

  commit(): void {
    this.guard(() => {
      fsyncSync(this.fd);
      closeSync(this.fd);
      this.fd = -1;
      renameSync(this.tmp, this.path);
    });
  }

  abort(): void {
    if (this.fd >= 0) {
      try {
        closeSync(this.fd);
      } catch {
        /* already failing */
      }
      this.fd = -1;
    }
    rmSync(this.tmp, { force: true });
  }

  private guard(step: () => void): void {
    try {
      step();
    } catch (e) {
      this.abort();
      const missingDir = (e as NodeJS.ErrnoException).code === 'ENOENT';
      throw new OutputFileError(`${this.what} ${this.path} ${missingDir ? `cannot be written: the folder ${dirname(this.path)} does not exist` : fsProblem(e)}`);
    }
  }
}

/** Write `data` to `path` atomically (see AtomicFile). */
export function atomicWrite(path: string, data: Uint8Array | string, what = 'file'): void {
  const f = new AtomicFile(path, what);
  f.writeAt(typeof data === 'string' ? Buffer.from(data, 'utf8') : data, 0);
  f.commit();
}

/** Remove `<name>.tmp-<pid>` files in `dir` left by processes that are gone (killed mid-write). */
export function removeStaleTemps(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const n of names) {
    const m = TMP_SUFFIX.exec(n);
    if (!m || Number(m[1]) === process.pid || pidAlive(Number(m[1]))) continue;
    rmSync(join(dir, n), { force: true });
    removed.push(n);
  }
  return removed;
}
