import './helpers/env.ts';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { ClipTokenizer, bytesToUnicode, cleanText } from '../src/model/tokenizer.ts';
import { fixText, htmlUnescape } from '../src/model/ftfy.ts';
import { readSafetensors } from '../src/io/safetensors.ts';
import { TokenizerError } from '../src/errors.ts';
import { referencePath } from './helpers/fixtures.ts';

const GZ = 'assets/bpe_simple_vocab_16e6.txt.gz';


interface Case {
  index: number; why: string; text: string; after_ftfy: string; cleaned: string;
  bpe_pieces: string[]; ids_untruncated: number[]; truncated: boolean; ids: number[];
}
const cases = (): Case[] => JSON.parse(readFileSync(referencePath('tokenizer_cases.json'), 'utf8'));

test('reference cases: ftfy, cleaning, BPE pieces and ids match open_clip', () => {
  const tok = ClipTokenizer.default();
  const all = cases();
  assert.equal(all.length, 13);
  for (const c of all) {
    const what = `case ${c.index} (${c.why})`;
    assert.equal(fixText(c.text), c.after_ftfy, `${what}: after_ftfy`);
    assert.equal(cleanText(c.text), c.cleaned, `${what}: cleaned`);
    assert.deepEqual(tok.bpePieces(c.text), c.bpe_pieces, `${what}: bpe_pieces`);
    assert.deepEqual([tok.sot, ...tok.encode(c.text), tok.eot], c.ids_untruncated, `${what}: ids_untruncated`);
    assert.deepEqual(Array.from(tok.tokenize([c.text])), c.ids, `${what}: ids`);
  }
});

test('batch tokenize equals tokens.safetensors [13,77]', () => {
  const t = readSafetensors(referencePath('tokens.safetensors')).get('tokens');
  assert.ok(t, 'tokens tensor present');
  assert.deepEqual(t.shape, [13, 77]);
  const ids = ClipTokenizer.default().tokenize(cases().map((c) => c.text));
  assert.equal(ids.length, 13 * 77);
  assert.deepEqual(Array.from(ids), Array.from(t.data as ArrayLike<number>));
});

test('vocab layout: SOT/EOT ids, byte tokens, first merge', () => {
  const tok = ClipTokenizer.default();
  assert.equal(tok.sot, 49406);
  assert.equal(tok.eot, 49407);
  assert.equal(tok.vocabSize, 49408);
  assert.deepEqual(tok.encode('!'), [256]); // '!' is byte char 0, '!</w>' is 256
  assert.deepEqual(tok.bpePieces('in'), ['in</w>']);
  const b2u = bytesToUnicode();
  assert.equal(b2u.length, 256);
  assert.equal(new Set(b2u.map(([, c]) => c)).size, 256);
  assert.deepEqual(b2u[0], [0x21, '!']);
  assert.deepEqual(b2u.find(([b]) => b === 0x20), [0x20, '\u0120']); // space -> Ġ as in GPT-2
});

test('truncation keeps EOT last; exact fit is not truncated; empty string is SOT EOT', () => {
  const tok = ClipTokenizer.default();
  const long = Array.from({ length: 200 }, (_, i) => `word${i % 10}`).join(' ');
  const ids = tok.encode(long);
  assert.ok(ids.length > 200);
  for (const ctx of [77, 16, 2]) {
    const row = tok.tokenize([long], ctx);
    assert.equal(row.length, ctx);
    assert.equal(row[0], tok.sot);
    assert.equal(row[ctx - 1], tok.eot);
    assert.deepEqual(Array.from(row.slice(1, ctx - 1)), ids.slice(0, ctx - 2));
  }
  // 75 ids + SOT + EOT = 77 exactly: no truncation; 76 ids: the 76th is dropped for EOT.
  const t75 = Array(75).fill('a').join(' ');
  const r75 = tok.tokenize([t75]);
  assert.equal(r75[75], 320);
  assert.equal(r75[76], tok.eot);
  const r76 = tok.tokenize([t75 + ' dog']);
  assert.equal(r76[75], 320);
  assert.equal(r76[76], tok.eot);
  assert.deepEqual(Array.from(tok.tokenize([''], 5)), [tok.sot, tok.eot, 0, 0, 0]);
  assert.deepEqual(Array.from(tok.tokenize([' \t\n '], 4)), [tok.sot, tok.eot, 0, 0]);
  assert.equal(tok.tokenize([]).length, 0);
});

test('special-token strings in text map to SOT/EOT as in open_clip', () => {
  const tok = ClipTokenizer.default();
  assert.deepEqual(tok.encode('a <start_of_text> b <END_OF_TEXT>'), [320, 49406, 321, 49407]);
});

test('bad input gives TokenizerError with a clear message', () => {
  const tok = ClipTokenizer.default();
  assert.throws(() => tok.tokenize(['a'], 1), (e: unknown) => e instanceof TokenizerError && /context length/.test((e as Error).message));
  assert.throws(() => tok.tokenize(['a'], 7.5), TokenizerError);
  assert.throws(() => tok.encode(42 as unknown as string), /must be a string/);
  assert.throws(() => ClipTokenizer.fromMergesGz('/nonexistent/merges.txt.gz'), /cannot read BPE merges file .*ENOENT/);
  const dir = mkdtempSync(join(tmpdir(), 'cliplens-tok-'));
  try {
    writeFileSync(join(dir, 'plain.txt'), 'not gzip');
    assert.throws(() => ClipTokenizer.fromMergesGz(join(dir, 'plain.txt')), /not a gzip file/);
    writeFileSync(join(dir, 'short.gz'), gzipSync('#version: 0.2\ni n\nt h\n'));
    assert.throws(() => ClipTokenizer.fromMergesGz(join(dir, 'short.gz')), /CLIP needs 48894/);
    writeFileSync(join(dir, 'vocab.json'), '{"a": 0,');
    writeFileSync(join(dir, 'merges.txt'), '#version: 0.2\n');
    assert.throws(() => ClipTokenizer.fromHf(join(dir, 'vocab.json'), join(dir, 'merges.txt')), /not valid JSON/);
    writeFileSync(join(dir, 'vocab.json'), '{"a": 0}');
    assert.throws(() => ClipTokenizer.fromHf(join(dir, 'vocab.json'), join(dir, 'merges.txt')), /no <start_of_text>/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('fromHf on vocab.json + merges.txt generated from the gz gives identical ids', () => {
  const lines = gunzipSync(readFileSync(GZ)).toString('utf8').split('\n').slice(1, 49152 - 256 - 2 + 1);
  const bytes = bytesToUnicode().map(([, c]) => c);
  const vocab = [...bytes, ...bytes.map((c) => c + '</w>'), ...lines.map((l) => l.split(' ').join('')), '<|startoftext|>', '<|endoftext|>'];
  const dir = mkdtempSync(join(tmpdir(), 'cliplens-hf-'));
  try {
    writeFileSync(join(dir, 'vocab.json'), JSON.stringify(Object.fromEntries(vocab.map((t, i) => [t, i]))));
    writeFileSync(join(dir, 'merges.txt'), '#version: 0.2\n' + lines.join('\n') + '\n');
    const hf = ClipTokenizer.fromHf(join(dir, 'vocab.json'), join(dir, 'merges.txt'));
    const ref = ClipTokenizer.default();
    assert.equal(hf.sot, 49406);
    assert.equal(hf.eot, 49407);
    const texts = [...cases().map((c) => c.text), 'a <start_of_text> b', 'Ünïcödé ＷＩＤＥ “quotes”', 'x'.repeat(300)];
    assert.deepEqual(Array.from(hf.tokenize(texts)), Array.from(ref.tokenize(texts)));

    // A vocab that lacks a piece the merges produce is reported, not silently mapped.
    const small = Object.fromEntries(vocab.slice(0, 512).concat(['<|startoftext|>', '<|endoftext|>']).map((t, i) => [t, i]));
    writeFileSync(join(dir, 'vocab.json'), JSON.stringify(small));
    const broken = ClipTokenizer.fromHf(join(dir, 'vocab.json'), join(dir, 'merges.txt'));
    assert.throws(() => broken.encode('photo'), /not in the vocabulary/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('html.unescape matches Python (values produced by CPython 3.11 html.unescape)', () => {
  const expected: [string, string][] = [
    ['&amp', '&'], ['&notit;', '\u00acit;'], ['&#128;', '\u20ac'], ['&#0;', '\ufffd'], ['&#xD800;', '\ufffd'],
    ['&#9999999999;', '\ufffd'], ['&EACUTE;', '&EACUTE;'], ['&ampx', '&x'], ['&#x1F600;', '\u{1F600}'],
    ['&#65', 'A'], ['&lt;&lt;', '<<'], ['&Amp;', '&Amp;'], ['&#11;', ''], ['&#xfffe;', ''], ['&amp;amp;', '&amp;'],
    ['a & b', 'a & b'], ['&#x;', '&#x;'], ['&NotEqualTilde;', '\u2242\u0338'], ['&copy2023', '\u00a92023'],
  ];
  for (const [input, out] of expected) assert.equal(htmlUnescape(input), out, JSON.stringify(input));
});

test('ftfy subset: documented ftfy examples and the CLIP-relevant fixes', () => {
  const mojibake = (s: string): string => Buffer.from(s, 'utf8').toString('latin1');
  const cases: [string, string][] = [
    // ftfy docstring examples (default config)
    ['u\u00cc\u02c6nicode', '\u00fcnicode'],
    ['HTML entities &lt;3', 'HTML entities <3'],
    ['<em>HTML entities &lt;3</em>', '<em>HTML entities &lt;3</em>'],
    ['&macr;\\_(\u00e3\x83\x84)_/&macr;', '\u00af\\_(\u30c4)_/\u00af'],
    ['\ufeffParty like\nit&rsquo;s 1999!', "Party like\nit's 1999!"],
    ['\uff2c\uff2f\uff35\uff24\u3000\uff2e\uff2f\uff29\uff33\uff25\uff33', 'LOUD NOISES'],
    ['This \u00e2\u20ac\u201d should be an em dash', 'This \u2014 should be an em dash'],
    ['not such a fan of Charlotte Bront\u00eb\u2026\u201d', 'not such a fan of Charlotte Bront\u00eb\u2026"'],
    ['AH\u00c5\u2122, the new sofa from IKEA\u00ae', 'AH\u00c5\u2122, the new sofa from IKEA\u00ae'],
    ['This text was never UTF-8 at all\x85', 'This text was never UTF-8 at all\u2026'],
    ['\u00c3\u00banico', '\u00fanico'],
    ['This text is fine already :\u00fe', 'This text is fine already :\u00fe'],
    ['P&EACUTE;REZ', 'P\u00c9REZ'],
    ['\ufb02u\ufb03e\ufb06', 'fluffiest'],
    ['\uff35\uff80\uff70\uff9d', 'U\u30bf\u30fc\u30f3'],
    ['\x1b[36;44mI&#x92;m blue\x1b[0m', "I'm blue"],
    // mojibake: UTF-8 read as Latin-1 / Windows-1252, whole and embedded
    ['caf\u00c3\u00a9', 'caf\u00e9'],
    [mojibake('na\u00efve Z\u00fcrich \u65e5\u672c'), 'na\u00efve Z\u00fcrich \u65e5\u672c'],
    [mojibake('dog \u{1F436}'), 'dog \u{1F436}'],
    ['caf\u00e9 it\u00e2\u20ac\u2122s', "caf\u00e9 it's"],
    // left alone: plausible real text
    ['Fu\u00df\u201d', 'Fu\u00df"'],
    ['CAF\u00c9\u00bb', 'CAF\u00c9\u00bb'],
    ['caf\u00e9 na\u00efve', 'caf\u00e9 na\u00efve'],
    // NFC, not NFKC: composes accents, keeps superscripts, ellipsis and circled digits
    ['e\u0301 x\u00b2 \u2026 \u2460', '\u00e9 x\u00b2 \u2026 \u2460'],
    // line breaks and control characters
    ['a\r\nb\rc\u2028d\u2029e', 'a\nb\nc\nd\ne'],
    ['a\x00b\x07c\x7fd\u200be\tf\x0cg', 'abcd\u200be\tf\x0cg'],
    ['\u2018single\u2019 \u201cdouble\u201d \u02bc', "'single' \"double\" '"],
    ['lone \ud800 surrogate', 'lone \ufffd surrogate'],
    // '<' on a line turns entity decoding off from that line on
    ['&amp;\n<b>&amp;\n&amp;', '&\n<b>&amp;\n&amp;'],
  ];
  for (const [input, out] of cases) assert.equal(fixText(input), out, JSON.stringify(input));
});

test('cleanText: html.unescape twice after ftfy, Python whitespace rules, lower-case', () => {
  assert.equal(cleanText('<b>&amp;amp;</b>'), '<b>&</b>'); // ftfy skips (has '<'), two html.unescape passes
  assert.equal(cleanText('&amp'), '&'); // html.unescape accepts the legacy form without ';'
  assert.equal(cleanText('\u00a0 A\u3000\u2003B \x85'), 'a b \u2026'); // \x85 is read as cp1252 '…' by ftfy
  assert.equal(cleanText('x\ufeffy'), 'xy');
  assert.equal(cleanText('\u039f\u0394\u039f\u03a3'), '\u03bf\u03b4\u03bf\u03c2'); // final sigma, as Python's str.lower
});
