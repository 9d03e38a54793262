// SigLIP's text tokenizer: SentencePiece (the real library, compiled to WebAssembly, reading
// spiece.model) plus what transformers' SiglipTokenizer does around it, or open_clip's
// cleaning for open_clip's timm-tower SigLIP.
//
// transformers SiglipTokenizer (the reference's AutoTokenizer), step by step:
//  1. '▁' + text with every '▁' in it replaced by ' '.
//  2. do_lower_case: every character outside the special tokens lower-cased on its own (the
//     regex `(.+?)`: per code point, so no final-sigma rule; '\n' is left alone).
//  3. Split on the added tokens (</s>, <unk>, ...); their lstrip/rstrip eat the whitespace beside them.
//  4. Each other chunk: remove string.punctuation, collapse Python-\s runs to ' ', strip; encode
//     '<unk>' + chunk with add_dummy_prefix forced off and drop the pieces '<unk>' alone encodes to.
//  5. A leading lone '▁' piece before a special token is dropped; '</s>' appended unless last;
//     truncated to max_length − 1 (+ '</s>'), then right-padded with the pad id to max_length.
// open_clip (timm layout): ftfy + html.unescape ×2 + strip, canonicalize ('_' → ' ', punctuation
// removed, lower-cased, whitespace collapsed), then the stored model as it is (dummy prefix on),
// '</s>' appended, truncated and padded with '</s>' as its T5 tokenizer with pad id 1 does.

import { readFileSync } from 'node:fs';
import protobuf from 'protobufjs/minimal.js';
import { fixText, htmlUnescape, pyStrip } from './ftfy.ts';
import { TokenizerError } from '../errors.ts';

/** What the model's text tower needs from a tokenizer. */
export interface SiglipTokenizerOptions {
  /** Padded length (max_length). */
  maxLength: number;
  /** 'hf': transformers SiglipTokenizer; 'open_clip': open_clip's cleaning around the T5 tokenizer. */
  mode: 'hf' | 'open_clip';
  /** tokenizer_config.json, when there is one. */
  config?: Record<string, unknown>;
}

interface AddedToken {
  content: string;
  id: number;
  lstrip: boolean;
  rstrip: boolean;
}

const PUNCTUATION = new Set('!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~');
// Python str.isspace() characters: what `re`'s \s, str.split() and str.strip() use.
const PY_SPACE = '\\t-\\r\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const SPACE_RUN = new RegExp(`[${PY_SPACE}]+`, 'gu');
// lstrip / rstrip of added tokens (pyStrip, from ftfy.ts, strips both ends).
const LEAD = new RegExp(`^[${PY_SPACE}]+`, 'u');
const TRAIL = new RegExp(`[${PY_SPACE}]+$`, 'u');
const UNDERLINE = '\u2581';

const removePunctuation = (s: string) => Array.from(s, (c) => (PUNCTUATION.has(c) ? '' : c)).join('');

/** SiglipTokenizer.canonicalize_text: punctuation removed, whitespace runs collapsed, stripped. */
export function canonicalizeHf(text: string): string {
  return pyStrip(removePunctuation(text).replace(SPACE_RUN, ' '));
}

/** open_clip's canonicalize_text(basic_clean(text)). */
export function canonicalizeOpenClip(text: string): string {
  const basic = pyStrip(htmlUnescape(htmlUnescape(fixText(text))));
  return pyStrip(removePunctuation(basic.replaceAll('_', ' ')).toLowerCase().replace(SPACE_RUN, ' '));
}

/** The piece strings of a SentencePiece ModelProto (field 1: repeated SentencePiece{1: piece}), checking the bytes parse. */
export function spmPieces(model: Uint8Array, path: string): string[] {
  const r = protobuf.Reader.create(model);
  const pieces: string[] = [];
  try {
    while (r.pos < r.len) {
      const tag = r.uint32();
      if (tag >>> 3 === 1 && (tag & 7) === 2) {
        const end = r.uint32() + r.pos;
        let piece = '';
        while (r.pos < end) {
          const t = r.uint32();
          if (t >>> 3 === 1 && (t & 7) === 2) piece = r.string();
          else r.skipType(t & 7);
        }
        if (r.pos !== end) throw new Error('piece overruns its message');
        pieces.push(piece);
      } else r.skipType(tag & 7);
    }
  } catch (e) {
    throw new TokenizerError(`${path} is not a SentencePiece model (${(e as Error).message})`);
  }
  if (!pieces.length) throw new TokenizerError(`${path} is not a SentencePiece model (no pieces)`);
  return pieces;
}

// A serialized NormalizerSpec{add_dummy_prefix: false} as ModelProto field 3. Protobuf merges a
// repeated embedded message into the earlier one, so appending it is exactly transformers'
// `model.normalizer_spec.MergeFrom(NormalizerSpec(add_dummy_prefix=False))`.
const NO_DUMMY_PREFIX = Uint8Array.of(0x1a, 0x02, 0x18, 0x00);

interface Processor {
  encodeIds(text: string): number[];
}

async function loadProcessor(model: Uint8Array): Promise<Processor> {
  const { SentencePieceProcessor } = await import('@sctg/sentencepiece-js');
  const sp = new SentencePieceProcessor();
  await sp.loadFromB64StringModel(Buffer.from(model).toString('base64'));
  return sp;
}

export class SiglipTokenizer {
  private constructor(
    private sp: Processor,
    private pieces: string[],
    private added: AddedToken[],
    private opts: SiglipTokenizerOptions,
    private eos: number,
    private pad: number,
    private unk: string,
    private unkLength: number,
    private lower: boolean,
  ) {}

  get maxLength(): number {
    return this.opts.maxLength;
  }

  get vocabSize(): number {
    return this.pieces.length;
  }

  static async load(spiecePath: string, opts: SiglipTokenizerOptions): Promise<SiglipTokenizer> {
    let raw: Uint8Array;
    try {
      raw = readFileSync(spiecePath);
    } catch (e) {
      throw new TokenizerError(`cannot read SentencePiece model ${spiecePath}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
    }
    const pieces = spmPieces(raw, spiecePath);
    const model = opts.mode === 'hf' ? Buffer.concat([raw, NO_DUMMY_PREFIX]) : raw;
    const sp = await loadProcessor(model);
    const idOf = (content: string, what: string) => {
      const i = pieces.indexOf(content);
      if (i < 0) throw new TokenizerError(`${spiecePath}: the ${what} '${content}' is not a piece of the SentencePiece model`);
      return i;
    };
    const cfg = opts.config ?? {};
    const tokenText = (v: unknown, dflt: string) => (typeof v === 'string' ? v : v && typeof v === 'object' && typeof (v as { content?: unknown }).content === 'string' ? (v as { content: string }).content : dflt);
    const eosText = tokenText(cfg.eos_token, '</s>');
    const padText = tokenText(cfg.pad_token, '</s>');
    const unkText = tokenText(cfg.unk_token, '<unk>');
    // Added tokens: tokenizer_config's added_tokens_decoder, else SiglipTokenizer's own (lstrip+rstrip).
    const added = new Map<string, AddedToken>();
    const dec = cfg.added_tokens_decoder;
    if (dec && typeof dec === 'object') {
      for (const [id, t] of Object.entries(dec as Record<string, { content?: unknown; lstrip?: unknown; rstrip?: unknown }>)) {
        if (typeof t?.content !== 'string' || !/^\d+$/.test(id)) throw new TokenizerError('tokenizer_config.json added_tokens_decoder entries need a numeric id and a string content');
        added.set(t.content, { content: t.content, id: Number(id), lstrip: t.lstrip === true, rstrip: t.rstrip === true });
      }
    }
    const extra = Array.isArray(cfg.additional_special_tokens) ? cfg.additional_special_tokens.map((t) => tokenText(t, '')) : [];
    for (const t of [eosText, unkText, padText, ...extra]) {
      if (t && !added.has(t)) added.set(t, { content: t, id: idOf(t, 'special token'), lstrip: true, rstrip: true });
    }
    const eos = added.get(eosText)!.id;
    const pad = added.get(padText)!.id;
    const unkLength = opts.mode === 'hf' ? sp.encodeIds(unkText).length : 0;
    const lower = cfg.do_lower_case !== false;
    // Longest first, so a token that contains another is matched whole.
    const list = [...added.values()].sort((a, b) => b.content.length - a.content.length);
    return new SiglipTokenizer(sp, pieces, list, opts, eos, pad, unkText, unkLength, lower);
  }

  /** Ids of one text before end token, truncation and padding. */
  encode(text: string): number[] {
    if (typeof text !== 'string') throw new TokenizerError(`text to tokenize must be a string, got ${typeof text}`);
    if (this.opts.mode === 'open_clip') return this.sp.encodeIds(canonicalizeOpenClip(text));
    const s = UNDERLINE + text.replaceAll(UNDERLINE, ' ');
    // Split into [text, special, text, special, ..., text]; lower-case the text parts per character.
    const chunks: string[] = [];
    let cur = '';
    for (let i = 0; i < s.length; ) {
      const tok = this.added.find((t) => s.startsWith(t.content, i));
      if (tok) {
        chunks.push(cur, tok.content);
        cur = '';
        i += tok.content.length;
        continue;
      }
      const ch = String.fromCodePoint(s.codePointAt(i)!);
      cur += this.lower && ch !== '\n' ? ch.toLowerCase() : ch;
      i += ch.length;
    }
    chunks.push(cur);
    for (let j = 1; j < chunks.length; j += 2) {
      const tok = this.added.find((t) => t.content === chunks[j])!;
      if (tok.lstrip) chunks[j - 1] = chunks[j - 1].replace(TRAIL, '');
      if (tok.rstrip) chunks[j + 1] = chunks[j + 1].replace(LEAD, '');
    }
    const ids: number[] = [];
    const special: boolean[] = []; // whether each id is an added token (not a SentencePiece piece)
    chunks.forEach((c, j) => {
      if (!c) return;
      if (j % 2 === 1) {
        ids.push(this.added.find((a) => a.content === c)!.id);
        special.push(true);
        return;
      }
      const e = this.sp.encodeIds(this.unk + canonicalizeHf(c));
      const kept = e.length >= this.unkLength ? e.slice(this.unkLength) : e;
      ids.push(...kept);
      special.push(...kept.map(() => false));
    });
    if (ids.length > 1 && !special[0] && this.pieces[ids[0]] === UNDERLINE && special[1]) ids.shift();
    return ids;
  }

  /** Ids with the end token, no truncation or padding (transformers' build_inputs_with_special_tokens). */
  withEos(ids: number[]): number[] {
    return ids.length > 0 && ids[ids.length - 1] === this.eos ? ids : [...ids, this.eos];
  }

  /** [texts.length × maxLength] ids: end token, truncated to maxLength − 1 (+ end token), right-padded. */
  tokenize(texts: string[], maxLength = this.opts.maxLength): Int32Array {
    if (!Number.isInteger(maxLength) || maxLength < 1) throw new TokenizerError(`max_length must be a positive integer, got ${maxLength}`);
    const out = new Int32Array(texts.length * maxLength).fill(this.pad);
    texts.forEach((t, i) => {
      let ids = this.encode(t);
      if (ids.length + 1 > maxLength) ids = ids.slice(0, maxLength - 1);
      ids = this.withEos(ids);
      out.set(ids, i * maxLength);
    });
    return out;
  }
}
