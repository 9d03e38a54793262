// CLIP's byte-level BPE tokenizer, reproducing open_clip's SimpleTokenizer (OpenAI CLIP's, MIT):
// clean (ftfy, html.unescape twice, whitespace, lower) -> regex pre-split -> UTF-8 bytes mapped to
// printable chars -> BPE with the 48,894 merges of bpe_simple_vocab_16e6 -> ids; SOT/EOT framing,
// zero padding, truncation that keeps EOT last.

import { readFileSync } from 'node:fs';
import { assetPath } from '../assets.ts';
import { gunzipSync } from 'node:zlib';
import { fixText, htmlUnescape, pyStrip, whitespaceClean, PY_REGEX_WS } from './ftfy.ts';
import { TokenizerError } from '../errors.ts';

const SOT_TEXT = '<start_of_text>';
const EOT_TEXT = '<end_of_text>';
/** open_clip keeps merges[1 : 49152-256-2+1]: the vocab is 256 bytes x2 + 48,894 merges + 2 specials = 49,408. */
const N_MERGES = 49152 - 256 - 2;
export const DEFAULT_CONTEXT_LENGTH = 77;

/**
 * GPT-2 / CLIP bytes_to_unicode as [byte, char] pairs in the reference's dict order (printable bytes
 * first, mapped to themselves; the rest to U+0100..): that order is the order of the first 512 ids.
 */
export function bytesToUnicode(): [number, string][] {
  const bs: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) bs.push(b);
  for (let b = 0xa1; b <= 0xac; b++) bs.push(b);
  for (let b = 0xae; b <= 0xff; b++) bs.push(b);
  const cs = bs.slice();
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n);
      n++;
    }
  }
  return bs.map((b, i) => [b, String.fromCodePoint(cs[i])]);
}

const BYTE_CHARS = bytesToUnicode().map(([, c]) => c); // vocab order
const BYTE_ENCODER: string[] = []; // byte -> char
for (const [b, c] of bytesToUnicode()) BYTE_ENCODER[b] = c;
const UTF8 = new TextEncoder();

// open_clip's pattern (regex module, IGNORECASE); `\s` spelled out because JS `\s` differs from Python's.
const TOKEN_RE = new RegExp(
  `${SOT_TEXT}|${EOT_TEXT}|'s|'t|'re|'ve|'m|'ll|'d|\\p{L}+|\\p{N}|[^${PY_REGEX_WS}\\p{L}\\p{N}]+`,
  'giu',
);

/** ftfy.fix_text, then html.unescape twice, strip, whitespace_clean, lower-case: open_clip's cleaning. */
export function cleanText(text: string): string {
  if (typeof text !== 'string') throw new TokenizerError(`text to tokenize must be a string, got ${typeof text}`);
  const basic = pyStrip(htmlUnescape(htmlUnescape(fixText(text))));
  return whitespaceClean(basic).toLowerCase();
}

function readGzText(path: string): string {
  let raw: Buffer;
  try {
    raw = readFileSync(path);
  } catch (e) {
    throw new TokenizerError(`cannot read BPE merges file ${path}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  try {
    return gunzipSync(raw).toString('utf8');
  } catch {
    throw new TokenizerError(`${path} is not a gzip file (expected bpe_simple_vocab_16e6.txt.gz)`);
  }
}

function readText(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw new TokenizerError(`cannot read ${what} ${path}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
}

function parseMerges(lines: string[], source: string): [string, string][] {
  return lines.map((line, i) => {
    const parts = line.split(/\s+/).filter((p) => p.length > 0);
    if (parts.length !== 2) throw new TokenizerError(`${source}: merge ${i + 1} is not two symbols: ${JSON.stringify(line)}`);
    return [parts[0], parts[1]];
  });
}

let defaultInstance: ClipTokenizer | undefined;

export class ClipTokenizer {
  readonly sot: number;
  readonly eot: number;
  readonly vocabSize: number;
  private readonly encoder: Map<string, number>;
  private readonly ranks: Map<string, number>; // "first second" -> merge rank
  private readonly cache = new Map<string, string[]>();

  /**
   * @param merges BPE merges in priority order.
   * @param encoder token -> id; built open_clip's way (bytes, bytes+'</w>', merges, SOT, EOT) when omitted.
   * @param specials the vocab entries for SOT/EOT (open_clip: '<start_of_text>', HF: '<|startoftext|>').
   */
  constructor(merges: [string, string][], encoder?: Map<string, number>, specials: [string, string] = [SOT_TEXT, EOT_TEXT]) {
    this.ranks = new Map(merges.map(([a, b], i) => [`${a} ${b}`, i]));
    if (!encoder) {
      const vocab = BYTE_CHARS.slice();
      for (const c of BYTE_CHARS) vocab.push(c + '</w>');
      for (const [a, b] of merges) vocab.push(a + b);
      vocab.push(SOT_TEXT, EOT_TEXT);
      encoder = new Map(vocab.map((t, i) => [t, i]));
    }
    this.encoder = encoder;
    const sot = encoder.get(specials[0]);
    const eot = encoder.get(specials[1]);
    if (sot === undefined || eot === undefined) throw new TokenizerError(`vocabulary has no ${specials[0]} / ${specials[1]} token`);
    this.sot = sot;
    this.eot = eot;
    this.vocabSize = encoder.size;
    // The special strings in the text pass through BPE untouched, as open_clip's cache seeding does.
    this.cache.set(SOT_TEXT, [specials[0]]);
    this.cache.set(EOT_TEXT, [specials[1]]);
  }

  /** The tokenizer over the bundled bpe_simple_vocab_16e6.txt.gz (shared instance). */
  static default(): ClipTokenizer {
    defaultInstance ??= ClipTokenizer.fromMergesGz(
      assetPath('assets', 'bpe_simple_vocab_16e6.txt.gz'),
    );
    return defaultInstance;
  }

  /** From a CLIP merges file (gzip, first line a header), keeping lines 1..48894 as open_clip does. */
  static fromMergesGz(path: string): ClipTokenizer {
    const lines = readGzText(path).split('\n');
    if (lines.length < N_MERGES + 1) {
      throw new TokenizerError(`${path} has ${Math.max(0, lines.length - 1)} merge lines, CLIP needs ${N_MERGES}`);
    }
    return new ClipTokenizer(parseMerges(lines.slice(1, N_MERGES + 1), path));
  }

  /** From Hugging Face CLIPTokenizer files: vocab.json (token -> id) and merges.txt ('#version' header). */
  static fromHf(vocabJsonPath: string, mergesTxtPath: string): ClipTokenizer {
    let vocab: unknown;
    try {
      vocab = JSON.parse(readText(vocabJsonPath, 'vocab file'));
    } catch (e) {
      if (e instanceof TokenizerError) throw e;
      throw new TokenizerError(`${vocabJsonPath} is not valid JSON: ${(e as Error).message}`);
    }
    if (typeof vocab !== 'object' || vocab === null || Array.isArray(vocab)) {
      throw new TokenizerError(`${vocabJsonPath} must be a JSON object mapping tokens to ids`);
    }
    const encoder = new Map<string, number>();
    for (const [tok, id] of Object.entries(vocab)) {
      if (!Number.isInteger(id) || (id as number) < 0) throw new TokenizerError(`${vocabJsonPath}: id of ${JSON.stringify(tok)} is not a non-negative integer`);
      encoder.set(tok, id as number);
    }
    const lines = readText(mergesTxtPath, 'merges file').split('\n').map((l) => l.replace(/\r$/, ''));
    const body = (lines[0]?.startsWith('#version') ? lines.slice(1) : lines).filter((l) => l.trim().length > 0);
    const merges = parseMerges(body, mergesTxtPath);
    const specials: [string, string] = encoder.has('<|startoftext|>') ? ['<|startoftext|>', '<|endoftext|>'] : [SOT_TEXT, EOT_TEXT];
    return new ClipTokenizer(merges, encoder, specials);
  }

  /** BPE of one pre-token already mapped to byte chars; pieces end-of-word-marked with '</w>'. */
  private bpe(token: string): string[] {
    const cached = this.cache.get(token);
    if (cached) return cached;
    const chars = Array.from(token);
    let word = chars.slice(0, -1);
    word.push(chars[chars.length - 1] + '</w>');
    while (word.length > 1) {
      // Lowest-ranked adjacent pair, then merge all its (non-overlapping, left-to-right) occurrences.
      let best = Infinity;
      let first = '';
      let second = '';
      for (let i = 0; i < word.length - 1; i++) {
        const r = this.ranks.get(`${word[i]} ${word[i + 1]}`);
        if (r !== undefined && r < best) {
          best = r;
          first = word[i];
          second = word[i + 1];
        }
      }
      if (best === Infinity) break;
      const merged: string[] = [];
      for (let i = 0; i < word.length;) {
        if (word[i] === first && i < word.length - 1 && word[i + 1] === second) {
          merged.push(first + second);
          i += 2;
        } else {
          merged.push(word[i]);
          i++;
        }
      }
      word = merged;
    }
    this.cache.set(token, word);
    return word;
  }

  /** BPE pieces (in byte-char form, e.g. 'cafÃ©</w>') of the cleaned text. */
  bpePieces(text: string): string[] {
    const out: string[] = [];
    for (const m of cleanText(text).matchAll(TOKEN_RE)) {
      let token = '';
      for (const b of UTF8.encode(m[0])) token += BYTE_ENCODER[b];
      for (const piece of this.bpe(token)) out.push(piece);
    }
    return out;
  }

  /** Token ids of the text, without SOT/EOT and without truncation. */
  encode(text: string): number[] {
    return this.bpePieces(text).map((p) => {
      const id = this.encoder.get(p);
      if (id === undefined) throw new TokenizerError(`BPE piece ${JSON.stringify(p)} is not in the vocabulary (vocab and merges do not match)`);
      return id;
    });
  }

  /** [texts.length * contextLength] row-major ids: SOT, ids, EOT, zero padding; over-long rows end in EOT. */
  tokenize(texts: string[], contextLength: number = DEFAULT_CONTEXT_LENGTH): Int32Array {
    if (!Array.isArray(texts)) throw new TokenizerError(`tokenize expects an array of strings, got ${typeof texts}`);
    if (!Number.isInteger(contextLength) || contextLength < 2) throw new TokenizerError(`context length must be an integer >= 2, got ${contextLength}`);
    const out = new Int32Array(texts.length * contextLength);
    texts.forEach((text, row) => {
      const ids = this.encode(text);
      const base = row * contextLength;
      out[base] = this.sot;
      const n = Math.min(ids.length, contextLength - 2);
      for (let i = 0; i < n; i++) out[base + 1 + i] = ids[i];
      // Truncation = first ctx tokens of [SOT, ids..., EOT] with the last one overwritten by EOT.
      out[base + 1 + n] = this.eot;
    });
    return out;
  }
}
