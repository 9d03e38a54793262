import './helpers/env.ts';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, test } from 'node:test';
import { fetchRepoFiles, hubCacheDir, hubEndpoint, repoCacheDir } from '../src/io/hub.ts';
import { readSafetensors } from '../src/io/safetensors.ts';
import { parseOpenClipConfig } from '../src/model/config.ts';
import { openClipPretrained } from '../src/model/open_clip_pretrained.ts';
import { resolveModel, type ResolvedModel } from '../src/model/resolve.ts';
import { writeHfClipDir } from './helpers/hf_convert.ts';
import { startHubServer, type HubServer } from '../tools/hub_server.ts';
import { referencePath } from './helpers/fixtures.ts';
import { rejectsOneLine } from './helpers/errors.ts';
import { ModelNotFoundError } from '../src/errors.ts';

const FIX_ST = referencePath('tiny_a.safetensors');
const tinyCfg = JSON.parse(readFileSync(referencePath('tiny_a.json'), 'utf8'));
const fixtureBytes = readFileSync(FIX_ST);
const fixture = readSafetensors(FIX_ST);
const PP = { mean: [0.5, 0.4, 0.3], std: [0.2, 0.3, 0.4], interpolation: 'bicubic', resize_mode: 'shortest' };
const OC_CONFIG = Buffer.from(JSON.stringify({ model_cfg: tinyCfg, preprocess_cfg: PP }));
const WEIGHTS = 'open_clip_model.safetensors';

let tmp: string;
let server: HubServer;
let cache: string;
let n = 0;

function hfRepoFiles(withPreprocessor: boolean): Record<string, Buffer> {
  const dir = join(tmp, `hfsrc${withPreprocessor ? 1 : 0}`);
  writeHfClipDir(dir, fixture, tinyCfg, { preprocessor: withPreprocessor ? undefined : null });
  return Object.fromEntries(readdirSync(dir).map((f) => [f, readFileSync(join(dir, f))]));
}

before(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'cliplens-hub-'));
  server = await startHubServer({
    'org/tiny': { 'open_clip_config.json': OC_CONFIG, [WEIGHTS]: fixtureBytes },
    'org/noweights': { 'open_clip_config.json': OC_CONFIG },
    'org/tiny-hf': hfRepoFiles(true),
    'org/tiny-hf-nopp': hfRepoFiles(false),
    // Where open_clip's pretrained.py puts ViT-B-16 laion2b_s34b_b88k (here: the tiny fixture's weights).
    'laion/CLIP-ViT-B-16-laion2B-s34B-b88K': { [WEIGHTS]: fixtureBytes },
  });
});
after(async () => {
  await server.close();
  rmSync(tmp, { recursive: true, force: true });
});
beforeEach(() => {
  cache = join(tmp, `cache${n++}`);
  server.requests.length = 0;
  server.ignoreRange = false;
  server.redirect = false;
  server.announceSha = false;
  server.linkedEtag.clear();
  server.hang = false;
  server.linkedSize.clear();
});

const opts = () => ({ cacheDir: cache, endpoint: server.endpoint });
const cachedWeights = () => join(cache, 'org--tiny', 'main', WEIGHTS);

function assertSameWeights(m: ResolvedModel): void {
  for (const [name, t] of fixture) {
    const got = m.weights.get(name);
    assert.deepEqual(got.shape, t.shape, name);
    assert.ok(Buffer.from(got.data.buffer, got.data.byteOffset, got.data.byteLength).equals(Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength)), `${name} differs`);
  }
}

async function use(spec: string, o: Parameters<typeof resolveModel>[1]): Promise<ResolvedModel> {
  const m = await resolveModel(spec, o);
  m.weights.close();
  return m;
}

describe('open_clip hub repo (hf-hub:)', () => {
  test('downloads, resolves to the fixture, then works with no network', async () => {
    const m = await resolveModel('hf-hub:org/tiny', opts());
    try {
      assert.equal(m.name, 'hf-hub:org/tiny');
      assert.deepEqual(m.config, parseOpenClipConfig(tinyCfg, PP));
      assert.deepEqual(m.tokenizer, { kind: 'default' });
      assertSameWeights(m);
      assert.deepEqual(m.files, [join(cache, 'org--tiny', 'main', 'open_clip_config.json'), cachedWeights()]);
    } finally {
      m.weights.close();
    }
    assert.deepEqual(server.requests.map((r) => r.url), ['/org/tiny/resolve/main/open_clip_config.json', `/org/tiny/resolve/main/${WEIGHTS}`]);
    assert.ok(readFileSync(cachedWeights()).equals(fixtureBytes));
    const rec = JSON.parse(readFileSync(join(cache, 'org--tiny', 'main', '.complete.json'), 'utf8'));
    assert.equal(rec.files[WEIGHTS], fixtureBytes.length);

    server.requests.length = 0;
    await use('hf-hub:org/tiny', opts());
    await use('hf-hub:org/tiny', { ...opts(), offline: true });
    // The endpoint no longer matters once cached.
    await use('hf-hub:org/tiny', { cacheDir: cache, endpoint: 'http://127.0.0.1:9' });
    assert.equal(server.requests.length, 0);
  });

  test('interrupted download resumes with a Range request and is byte-identical', async () => {
    server.dropOnce(WEIGHTS, 10_000_000);
    const m = await use('hf-hub:org/tiny', opts());
    const reqs = server.requests.filter((r) => r.file === WEIGHTS);
    assert.equal(reqs.length, 2);
    assert.equal(reqs[0].range, undefined);
    const resumedAt = Number(/^bytes=(\d+)-$/.exec(reqs[1].range ?? '')?.[1]);
    assert.ok(resumedAt > 0 && resumedAt <= 10_000_000, `resumed at ${reqs[1].range}`);
    assert.ok(readFileSync(cachedWeights()).equals(fixtureBytes));
    assert.ok(!existsSync(`${cachedWeights()}.incomplete`));
    assert.deepEqual(m.config, parseOpenClipConfig(tinyCfg, PP));
  });

  test('progress off a terminal is at most one line per file, retries included', async () => {
    const lines: string[] = [];
    const write = process.stderr.write;
    const tty = Object.getOwnPropertyDescriptor(process.stderr, 'isTTY');
    Object.defineProperty(process.stderr, 'isTTY', { value: false, configurable: true });
    process.stderr.write = ((chunk: string | Uint8Array) => (lines.push(String(chunk)), true)) as typeof process.stderr.write;
    try {
      server.dropOnce(WEIGHTS, 3_000_000);
      await use('hf-hub:org/tiny', { ...opts(), progress: true });
      await use('hf-hub:org/tiny', { ...opts(), progress: true }); // cached: silent
    } finally {
      process.stderr.write = write;
      if (tty) Object.defineProperty(process.stderr, 'isTTY', tty);
      else delete (process.stderr as { isTTY?: boolean }).isTTY;
    }
    assert.deepEqual(lines, [`downloading org/tiny/open_clip_config.json (${OC_CONFIG.length} B)\n`, 'downloading org/tiny/open_clip_model.safetensors (32.3 MiB)\n']);
    assert.equal(server.requests.filter((r) => r.file === WEIGHTS).length, 2);
  });

  test('a partial file left by an earlier run is resumed', async () => {
    const dir = repoCacheDir('org/tiny', { cacheDir: cache });
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, `${WEIGHTS}.incomplete`), fixtureBytes.subarray(0, 1_234_567));
    await fetchRepoFiles('org/tiny', [{ name: WEIGHTS }], opts());
    assert.deepEqual(server.requests.map((r) => r.range), ['bytes=1234567-']);
    assert.ok(readFileSync(cachedWeights()).equals(fixtureBytes));
  });

  test('a server that ignores Range makes the download restart from zero', async () => {
    server.ignoreRange = true;
    server.dropOnce(WEIGHTS, 5_000_000);
    await use('hf-hub:org/tiny', opts());
    const reqs = server.requests.filter((r) => r.file === WEIGHTS);
    assert.equal(reqs.length, 2);
    assert.match(reqs[1].range ?? '', /^bytes=\d+-$/);
    assert.ok(readFileSync(cachedWeights()).equals(fixtureBytes));
  });

  test('a partial longer than the file (416) restarts cleanly', async () => {
    const dir = repoCacheDir('org/tiny', { cacheDir: cache });
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, `${WEIGHTS}.incomplete`), Buffer.alloc(fixtureBytes.length + 10));
    await fetchRepoFiles('org/tiny', [{ name: WEIGHTS }], opts());
    assert.deepEqual(server.requests.map((r) => r.range), [`bytes=${fixtureBytes.length + 10}-`, undefined]);
    assert.ok(readFileSync(cachedWeights()).equals(fixtureBytes));
  });

  test('size mismatch is detected and nothing is cached', async () => {
    server.linkedSize.set(WEIGHTS, fixtureBytes.length + 1);
    await rejectsOneLine(resolveModel('hf-hub:org/tiny', opts()), /size mismatch for org\/tiny\/open_clip_model\.safetensors: the hub says \d+ bytes/);
    assert.ok(!existsSync(cachedWeights()));
    const rec = JSON.parse(readFileSync(join(cache, 'org--tiny', 'main', '.complete.json'), 'utf8'));
    assert.equal(rec.files[WEIGHTS], undefined);
  });

  test('the sha256 the hub announces on its redirect is checked, across a resume', async () => {
    server.redirect = true;
    server.announceSha = true;
    server.dropOnce(WEIGHTS, 5_000_000);
    await use('hf-hub:org/tiny', opts());
    assert.ok(readFileSync(cachedWeights()).equals(fixtureBytes));
    // Each attempt goes hub → CDN; the resumed one carries its Range to the CDN.
    const weightReqs = server.requests.filter((r) => r.file === WEIGHTS);
    assert.deepEqual(weightReqs.map((r) => r.url.startsWith('/cdn/')), [false, true, false, true]);
    assert.match(weightReqs[3].range ?? '', /^bytes=\d+-$/);
  });

  test('a download whose sha256 differs from the announced one is refused and not cached', async () => {
    server.redirect = true;
    server.linkedEtag.set(WEIGHTS, `"${'ab'.repeat(32)}"`);
    await rejectsOneLine(resolveModel('hf-hub:org/tiny', opts()), /checksum mismatch for org\/tiny\/open_clip_model\.safetensors: the hub says sha256 (ab){32} but the download has [0-9a-f]{64}; not caching it/);
    assert.ok(!existsSync(cachedWeights()));
    assert.ok(!existsSync(`${cachedWeights()}.incomplete`));
    // A git-blob etag (not a sha256) is no checksum and is ignored.
    server.linkedEtag.set(WEIGHTS, '"0123abcd"');
    await use('hf-hub:org/tiny', opts());
    assert.ok(readFileSync(cachedWeights()).equals(fixtureBytes));
  });

  test('concurrent downloads of one repo wait for each other and fetch each file once', async () => {
    const [a, b] = await Promise.all([fetchRepoFiles('org/tiny', [{ name: 'open_clip_config.json' }, { name: WEIGHTS }], opts()), fetchRepoFiles('org/tiny', [{ name: 'open_clip_config.json' }, { name: WEIGHTS }], opts())]);
    assert.deepEqual(a, b);
    assert.deepEqual(server.requests.map((r) => r.file).sort(), ['open_clip_config.json', WEIGHTS].sort());
    assert.ok(readFileSync(cachedWeights()).equals(fixtureBytes));
    assert.ok(!existsSync(join(cache, 'org--tiny', 'main', '.lock')), 'lock released');
  });

  test('a lock left by a dead process is taken over', async () => {
    const dir = join(cache, 'org--tiny', 'main');
    mkdirSync(dir, { recursive: true });
    const dead = spawnSync(process.execPath, ['-e', 'process.exit(0)']).pid;
    writeFileSync(join(dir, '.lock'), JSON.stringify({ pid: dead, host: hostname() }));
    await fetchRepoFiles('org/tiny', [{ name: WEIGHTS }], opts());
    assert.ok(readFileSync(cachedWeights()).equals(fixtureBytes));
    assert.ok(!existsSync(join(dir, '.lock')));
  });

  test('a cached file truncated later is caught offline and re-fetched online', async () => {
    await use('hf-hub:org/tiny', opts());
    truncateSync(cachedWeights(), 1000);
    await rejectsOneLine(resolveModel('hf-hub:org/tiny', { ...opts(), offline: true }), /offline: .*open_clip_model\.safetensors is 1000 bytes but was downloaded as \d+/);
    server.requests.length = 0;
    await use('hf-hub:org/tiny', opts());
    assert.deepEqual(server.requests.map((r) => r.file), [WEIGHTS]);
    assert.ok(readFileSync(cachedWeights()).equals(fixtureBytes));
  });

  test('unknown hub id (404) gives ModelNotFoundError', async () => {
    const e = await rejectsOneLine(resolveModel('hf-hub:org/missing', opts()), /^hub id org\/missing not found at http:\/\/127\.0\.0\.1:\d+ \(404\)$/);
    assert.ok(e instanceof ModelNotFoundError);
    assert.ok(!existsSync(join(cache, 'org--missing', 'main', 'open_clip_config.json')));
  });

  test('repo without a safetensors checkpoint', async () => {
    await rejectsOneLine(resolveModel('hf-hub:org/noweights', opts()), /hub id org\/noweights at .* has no file open_clip_model\.safetensors \(404\); only safetensors/);
  });

  test('offline with an empty cache fails clearly and makes no request', async () => {
    await rejectsOneLine(resolveModel('hf-hub:org/tiny', { ...opts(), offline: true }), /^offline: hub id org\/tiny \(revision main\) is not fully cached in .* \(open_clip_config\.json missing; open_clip_model\.safetensors missing\)/);
    process.env.CLIPLENS_OFFLINE = '1';
    try {
      await rejectsOneLine(resolveModel('org/tiny-hf', opts()), /^offline: hub id org\/tiny-hf .*config\.json missing/);
    } finally {
      delete process.env.CLIPLENS_OFFLINE;
    }
    assert.equal(server.requests.length, 0);
  });

  test('unreachable endpoint fails fast with advice', async () => {
    const s = createServer();
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
    const port = (s.address() as AddressInfo).port;
    await new Promise<void>((r) => s.close(() => r()));
    await rejectsOneLine(
      resolveModel('hf-hub:org/tiny', { cacheDir: cache, endpoint: `http://127.0.0.1:${port}` }),
      /cannot download org\/tiny\/open_clip_config\.json from http:\/\/127\.0\.0\.1:\d+: network error \(ECONNREFUSED\).*offline/,
    );
  });

  test('a server that never answers times out', { timeout: 30_000 }, async () => {
    server.hang = true;
    await rejectsOneLine(fetchRepoFiles('org/tiny', [{ name: WEIGHTS }], { ...opts(), timeoutMs: 300 }), /no response within 0\.3s/);
  });

  test('revision goes into the URL and the cache path', async () => {
    const m = await use('hf-hub:org/tiny@v2', opts());
    assert.equal(server.requests[0].url, '/org/tiny/resolve/v2/open_clip_config.json');
    assert.equal(m.files[1], join(cache, 'org--tiny', 'v2', WEIGHTS));
    await rejectsOneLine(resolveModel('hf-hub:org/tiny@../x', opts()), /not a supported revision|not a valid hub id/);
    await rejectsOneLine(resolveModel('hf-hub:org/a/b', opts()), /not a valid hub id/);
  });
});

describe('open_clip names (--model ViT-B-16 --pretrained laion2b_s34b_b88k)', () => {
  test('architecture + tag: the weights come from the hub repository open_clip uses, through the cache', async () => {
    // The tiny fixture's weights stand in for ViT-B-16's, so the config from the name refuses them:
    // proof that the config is open_clip's ViT-B-16 (12 layers) and that the file came from the tag's repository.
    const refused = /vision_cfg\.layers = 12 in the config, but the checkpoint .*laion--CLIP-ViT-B-16-laion2B-s34B-b88K\/main\/open_clip_model\.safetensors holds 6 vision layers/;
    await rejectsOneLine(resolveModel('ViT-B-16', { ...opts(), pretrained: 'laion2b_s34b_b88k' }), refused);
    assert.deepEqual(server.requests.map((r) => r.url), [`/laion/CLIP-ViT-B-16-laion2B-s34B-b88K/resolve/main/${WEIGHTS}`]);
    assert.ok(readFileSync(join(cache, 'laion--CLIP-ViT-B-16-laion2B-s34B-b88K', 'main', WEIGHTS)).equals(fixtureBytes));
    server.requests.length = 0;
    // Cached: offline works, in either spelling, with the tag as open_clip cleans it.
    await rejectsOneLine(resolveModel('ViT-B-16', { ...opts(), pretrained: 'LAION2B-S34B-B88K', offline: true }), refused);
    await rejectsOneLine(resolveModel('ViT-B-16:laion2b_s34b_b88k', { ...opts(), offline: true }), refused);
    assert.equal(server.requests.length, 0);
  });

  test("the paper's names and tags: repository, activation, normalisation and architecture as open_clip's pretrained.py", () => {
    const OPENAI = [0.48145466, 0.4578275, 0.40821073];
    const cases: [string, string, string, 'gelu' | 'quick_gelu', number[], [number, number, number, number, number]][] = [
      // name, tag, hub repository, activation, mean, [image size, patch, width, layers, heads]
      ['ViT-B-16', 'laion2b_s34b_b88k', 'laion/CLIP-ViT-B-16-laion2B-s34B-b88K', 'gelu', OPENAI, [224, 16, 768, 12, 12]],
      ['ViT-B-16', 'openai', 'timm/vit_base_patch16_clip_224.openai', 'quick_gelu', OPENAI, [224, 16, 768, 12, 12]],
      ['ViT-L-14', 'laion2b_s32b_b82k', 'laion/CLIP-ViT-L-14-laion2B-s32B-b82K', 'gelu', [0.5, 0.5, 0.5], [224, 14, 1024, 24, 16]],
      ['ViT-L-14', 'openai', 'timm/vit_large_patch14_clip_224.openai', 'quick_gelu', OPENAI, [224, 14, 1024, 24, 16]],
      ['ViT-L-14-336', 'openai', 'timm/vit_large_patch14_clip_336.openai', 'quick_gelu', OPENAI, [336, 14, 1024, 24, 16]],
      ['ViT-H-14', 'laion2b_s32b_b79k', 'laion/CLIP-ViT-H-14-laion2B-s32B-b79K', 'gelu', OPENAI, [224, 14, 1280, 32, 16]],
      ['ViT-bigG-14', 'laion2b_s39b_b160k', 'laion/CLIP-ViT-bigG-14-laion2B-39B-b160k', 'gelu', OPENAI, [224, 14, 1664, 48, 16]],
      ['ViT-B-32', 'openai', 'timm/vit_base_patch32_clip_224.openai', 'quick_gelu', OPENAI, [224, 32, 768, 12, 12]],
      ['ViT-B-32', 'laion2b_s34b_b79k', 'laion/CLIP-ViT-B-32-laion2B-s34B-b79K', 'gelu', OPENAI, [224, 32, 768, 12, 12]],
      ['ViT-B-32-quickgelu', 'laion400m_e32', 'timm/vit_base_patch32_clip_224.laion400m_e32', 'quick_gelu', OPENAI, [224, 32, 768, 12, 12]],
    ];
    for (const [name, tag, hub, act, mean, [S, p, D, L, H]] of cases) {
      const r = openClipPretrained(name, tag)!;
      assert.equal(r.hub, hub, `${name} ${tag}`);
      assert.equal(r.name, `${name}:${tag}`);
      const cfg = parseOpenClipConfig(r.modelCfg, r.preprocessCfg);
      assert.equal(cfg.activation, act, `${name} ${tag}`);
      assert.deepEqual(cfg.preprocess.mean, mean, `${name} ${tag}`);
      const v = cfg.vision;
      assert.deepEqual([v.imageSize, v.patchSize, v.width, v.layers, v.heads], [S, p, D, L, H], `${name} ${tag}`);
    }
    assert.equal(openClipPretrained('toyworld'), undefined);
  });

  test('a missing or unknown tag, or --pretrained with another kind of model, is one line naming the choices', async () => {
    await rejectsOneLine(resolveModel('ViT-B-16', opts()), /^open_clip model 'ViT-B-16' needs --pretrained TAG: one of openai, laion400m_e31, laion400m_e32, laion2b_s34b_b88k$/);
    await rejectsOneLine(resolveModel('ViT-H-14', { ...opts(), pretrained: 'openai' }), /'openai' is not a pretrained tag of open_clip model 'ViT-H-14': use one of laion2b_s32b_b79k/);
    await rejectsOneLine(resolveModel('ViT-B-32-quickgelu', { ...opts(), pretrained: 'laion2b_s34b_b79k' }), /not a pretrained tag of open_clip model 'ViT-B-32-quickgelu': use one of openai, laion400m_e31, laion400m_e32$/);
    await rejectsOneLine(resolveModel('toyworld', { ...opts(), pretrained: 'openai' }), /--pretrained goes with an open_clip architecture name, not 'toyworld'; known: ViT-B-32 \(/);
    assert.equal(server.requests.length, 0);
  });
});

describe('transformers hub repo (org/name)', () => {
  test('downloads the HF layout (following redirects) and resolves it', async () => {
    server.redirect = true;
    const m = await resolveModel('org/tiny-hf', opts());
    try {
      assert.equal(m.tokenizer.kind, 'hf');
      assert.deepEqual(m.config.preprocess.mean, [0.5, 0.5, 0.5]);
      assert.equal(m.config.vision.layers, 6);
      assertSameWeights(m);
    } finally {
      m.weights.close();
    }
    assert.deepEqual(
      server.requests.filter((r) => !r.url.startsWith('/cdn/')).map((r) => r.file),
      ['config.json', 'model.safetensors', 'vocab.json', 'merges.txt', 'preprocessor_config.json'],
    );
    server.requests.length = 0;
    await use('org/tiny-hf', opts());
    assert.equal(server.requests.length, 0);
  });

  test('an absent optional preprocessor_config.json is remembered', async () => {
    const m = await use('org/tiny-hf-nopp', opts());
    assert.equal(m.files.length, 4);
    assert.equal(server.requests.length, 5);
    server.requests.length = 0;
    await use('org/tiny-hf-nopp', opts());
    assert.equal(server.requests.length, 0);
  });

  test('an open_clip-only repo named org/name falls back to the open_clip layout', async () => {
    const m = await use('org/tiny', opts());
    assert.deepEqual(m.config, parseOpenClipConfig(tinyCfg, PP));
    assert.deepEqual(server.requests.map((r) => r.file), ['config.json', 'open_clip_config.json', WEIGHTS]);
    server.requests.length = 0;
    await use('org/tiny', opts());
    assert.equal(server.requests.length, 0);
  });

  test('unknown org/name (404)', async () => {
    const e = await rejectsOneLine(resolveModel('org/missing', opts()), /^hub id org\/missing not found at http:\/\/127\.0\.0\.1:\d+ \(404\)$/);
    assert.ok(e instanceof ModelNotFoundError);
  });

  test('endpoint and cache come from the environment', async () => {
    process.env.CLIPLENS_HUB_ENDPOINT = server.endpoint + '/';
    process.env.CLIPLENS_CACHE = cache;
    try {
      assert.equal(hubEndpoint(), server.endpoint);
      assert.equal(hubCacheDir(), cache);
      await use('org/tiny-hf', {});
      assert.ok(existsSync(join(cache, 'org--tiny-hf', 'main', 'model.safetensors')));
    } finally {
      delete process.env.CLIPLENS_HUB_ENDPOINT;
      delete process.env.CLIPLENS_CACHE;
    }
    const saved = process.env.HF_ENDPOINT;
    process.env.HF_ENDPOINT = 'http://example.invalid';
    try {
      assert.equal(hubEndpoint(), 'http://example.invalid');
      assert.equal(hubEndpoint('http://opt'), 'http://opt');
    } finally {
      if (saved === undefined) delete process.env.HF_ENDPOINT;
      else process.env.HF_ENDPOINT = saved;
    }
  });
});
