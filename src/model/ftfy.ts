// Text fixing as CLIP's tokenizer does it: a port of the parts of ftfy 6 `fix_text` (default config)
// that matter for captions, plus Python's `html.unescape` and the whitespace rules of Python's `str`.
//
// Ported exactly: unescape_html (incl. ftfy's upper-case entity extension and its "auto" rule: no
// unescaping once a line contains '<'), fix_c1_controls, fix_latin_ligatures, fix_character_width,
// uncurl_quotes, fix_line_breaks, fix_surrogates, remove_terminal_escapes, remove_control_chars, NFC,
// the per-line segmentation and the repeat-until-stable loop.
// Approximated: fix_encoding. ftfy gates mojibake repair on a large "badness" heuristic (is_bad); here
// the gate is a UTF-8-looking run (a Latin-1/cp1252 lead char and its continuation chars) that is
// unlikely in real text: a lead of Â/Ã, or a continuation char other than common punctuation. Then,
// as ftfy does, the whole line, else each such run on its own (decode_inconsistent_utf8), is re-decoded
// when it is encodable as Latin-1 or sloppy Windows-1252, the bytes are valid UTF-8, and every 2-byte
// sequence has a lead byte typical of mojibake (Â Ã Ä Å Ì Í Î Ï Ð Ñ). restore_byte_a0, lossy
// sequences, CESU-8 and the rarer code pages (1250/1251/.../MacRoman/cp437) are not attempted: such
// text is left as it is.

import { HTML5_ENTITIES } from './html-entities.ts';

const hasOwn = (o: object, k: string): boolean => Object.prototype.hasOwnProperty.call(o, k);

// ---------------------------------------------------------------- Python html.unescape

// Python's html._invalid_charrefs: numeric references that browsers remap.
const INVALID_CHARREFS: ReadonlyMap<number, string> = new Map<number, string>([
  [0x00, '\ufffd'], [0x0d, '\r'], [0x80, '\u20ac'], [0x81, '\x81'], [0x82, '\u201a'], [0x83, '\u0192'],
  [0x84, '\u201e'], [0x85, '\u2026'], [0x86, '\u2020'], [0x87, '\u2021'], [0x88, '\u02c6'], [0x89, '\u2030'],
  [0x8a, '\u0160'], [0x8b, '\u2039'], [0x8c, '\u0152'], [0x8d, '\x8d'], [0x8e, '\u017d'], [0x8f, '\x8f'],
  [0x90, '\x90'], [0x91, '\u2018'], [0x92, '\u2019'], [0x93, '\u201c'], [0x94, '\u201d'], [0x95, '\u2022'],
  [0x96, '\u2013'], [0x97, '\u2014'], [0x98, '\u02dc'], [0x99, '\u2122'], [0x9a, '\u0161'], [0x9b, '\u203a'],
  [0x9c, '\u0153'], [0x9d, '\x9d'], [0x9e, '\u017e'], [0x9f, '\u0178'],
]);

// Python's html._invalid_codepoints: numeric references that decode to nothing.
function isInvalidCodepoint(n: number): boolean {
  return (n >= 0x1 && n <= 0x8) || n === 0xb || (n >= 0xe && n <= 0x1f) || (n >= 0x7f && n <= 0x9f) ||
    (n >= 0xfdd0 && n <= 0xfdef) || (n & 0xfffe) === 0xfffe;
}

const CHARREF_RE = /&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)/gu;

function replaceCharref(_m: string, s: string): string {
  if (s[0] === '#') {
    const hex = s[1] === 'x' || s[1] === 'X';
    const digits = (hex ? s.slice(2) : s.slice(1)).replace(/;$/, '');
    // Python ints are unbounded; anything past U+10FFFF maps to U+FFFD, so an overflowing float is fine.
    const num = hex ? parseInt(digits, 16) : parseInt(digits, 10);
    const mapped = INVALID_CHARREFS.get(num);
    if (mapped !== undefined) return mapped;
    if ((num >= 0xd800 && num <= 0xdfff) || num > 0x10ffff) return '\ufffd';
    if (isInvalidCodepoint(num)) return '';
    return String.fromCodePoint(num);
  }
  if (hasOwn(HTML5_ENTITIES, s)) return HTML5_ENTITIES[s];
  // Longest prefix that is a (legacy, semicolon-less) entity name, as the HTML5 spec says.
  for (let x = s.length - 1; x > 1; x--) {
    const p = s.slice(0, x);
    if (hasOwn(HTML5_ENTITIES, p)) return HTML5_ENTITIES[p] + s.slice(x);
  }
  return '&' + s;
}

/** Python's `html.unescape`: named (HTML5 rules, incl. `&amp` without ';'), decimal and hex references. */
export function htmlUnescape(s: string): string {
  if (!s.includes('&')) return s;
  return s.replace(CHARREF_RE, replaceCharref);
}

// ---------------------------------------------------------------- Python str whitespace

/** Characters matched by `\s` of the Python `regex` module (str patterns). */
export const PY_REGEX_WS = '\\t-\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
// str.strip() also strips \x1c-\x1f (str.isspace), unlike `\s`.
const STRIP_RE = /^[\t-\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+|[\t-\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+$/g;
const WS_RUN_RE = new RegExp(`[${PY_REGEX_WS}]+`, 'g');

/** Python's `str.strip()` (JS `trim()` differs: it strips U+FEFF and keeps \x1c-\x1f, \x85). */
export function pyStrip(s: string): string {
  return s.replace(STRIP_RE, '');
}

/** open_clip's whitespace_clean: `regex.sub(r'\s+', ' ', text).strip()`. */
export function whitespaceClean(s: string): string {
  return pyStrip(s.replace(WS_RUN_RE, ' '));
}

// ---------------------------------------------------------------- ftfy fixers

// ftfy chardata.HTML_ENTITIES: the HTML5 names that end in ';', plus upper-cased forms of the
// all-lower-case ones where the upper-case spelling is not itself an entity (&EACUTE; -> É).
const FTFY_ENTITIES: ReadonlyMap<string, string> = (() => {
  const m = new Map<string, string>();
  for (const [name, char] of Object.entries(HTML5_ENTITIES)) {
    if (!name.endsWith(';')) continue;
    m.set('&' + name, char);
    if (name === name.toLowerCase()) {
      const upper = '&' + name.toUpperCase();
      if (htmlUnescape(upper) === upper) m.set(upper, char.toUpperCase());
    }
  }
  return m;
})();

const FTFY_ENTITY_RE = /&#?[0-9A-Za-z]{1,24};/g;

/** ftfy's unescape_html: only complete `&...;` references, never `&amp`-style ones without ';'. */
export function ftfyUnescapeHtml(text: string): string {
  return text.replace(FTFY_ENTITY_RE, (m) => {
    const e = FTFY_ENTITIES.get(m);
    if (e !== undefined) return e;
    if (m.startsWith('&#')) {
      const u = htmlUnescape(m);
      return u.includes(';') ? m : u;
    }
    return m;
  });
}

// Windows-1252 bytes 0x80-0x9f; ftfy's "sloppy" codec keeps the five undefined ones as C1 controls.
const CP1252_HIGH = '\u20ac\x81\u201a\u0192\u201e\u2026\u2020\u2021\u02c6\u2030\u0160\u2039\u0152\x8d\u017d\x8f' +
  '\x90\u2018\u2019\u201c\u201d\u2022\u2013\u2014\u02dc\u2122\u0161\u203a\u0153\x9d\u017e\u0178';
const SLOPPY1252_ENCODE: ReadonlyMap<number, number> = new Map(
  [...CP1252_HIGH].map((c, i) => [c.codePointAt(0)!, 0x80 + i] as [number, number]),
);

/** ftfy fix_c1_controls: C1 controls are read as the Windows-1252 characters they almost always were. */
export function fixC1Controls(text: string): string {
  return text.replace(/[\x80-\x9f]/g, (c) => CP1252_HIGH[c.charCodeAt(0) - 0x80]);
}

const LIGATURES: Readonly<Record<string, string>> = {
  '\u0132': 'IJ', '\u0133': 'ij', '\u0149': '\u02bcn', '\u01f1': 'DZ', '\u01f2': 'Dz', '\u01f3': 'dz',
  '\u01c4': 'D\u017d', '\u01c5': 'D\u017e', '\u01c6': 'd\u017e', '\u01c7': 'LJ', '\u01c8': 'Lj', '\u01c9': 'lj',
  '\u01ca': 'NJ', '\u01cb': 'Nj', '\u01cc': 'nj', '\ufb00': 'ff', '\ufb01': 'fi', '\ufb02': 'fl',
  '\ufb03': 'ffi', '\ufb04': 'ffl', '\ufb05': '\u017ft', '\ufb06': 'st',
};
const LIGATURE_RE = new RegExp(`[${Object.keys(LIGATURES).join('')}]`, 'g');

/** ftfy fix_latin_ligatures (Latin ligatures and legacy digraphs only; NFKC would do far more). */
export function fixLatinLigatures(text: string): string {
  return text.replace(LIGATURE_RE, (c) => LIGATURES[c]);
}

// ftfy WIDTH_MAP: U+3000 -> space, and every char in U+FF01..U+FFEF whose NFKC form differs.
const WIDTH_MAP: ReadonlyMap<string, string> = (() => {
  const m = new Map<string, string>([['\u3000', ' ']]);
  for (let i = 0xff01; i < 0xfff0; i++) {
    const c = String.fromCharCode(i);
    const alt = c.normalize('NFKC');
    if (alt !== c) m.set(c, alt);
  }
  return m;
})();

/** ftfy fix_character_width: fullwidth ASCII -> ASCII, halfwidth katakana/hangul -> standard width. */
export function fixCharacterWidth(text: string): string {
  return text.replace(/[\u3000\uff01-\uffef]/g, (c) => WIDTH_MAP.get(c) ?? c);
}

/** ftfy uncurl_quotes. */
export function uncurlQuotes(text: string): string {
  return text.replace(/[\u201c-\u201f]/g, '"').replace(/[\u02bc\u2018-\u201b]/g, "'");
}

/** ftfy fix_line_breaks: CRLF, CR, U+2028, U+2029, U+0085 -> LF. */
export function fixLineBreaks(text: string): string {
  return text.replace(/\r\n/g, '\n').replace(/[\r\u2028\u2029\x85]/g, '\n');
}

/** ftfy fix_surrogates: JS strings keep proper pairs as characters, so only lone halves remain to replace. */
export function fixSurrogates(text: string): string {
  return text.replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '\ufffd');
}

/** ftfy remove_terminal_escapes (ANSI colour codes). */
export function removeTerminalEscapes(text: string): string {
  return text.replace(/\x1b\[((?:\d|;)*)([a-zA-Z])/g, '');
}

/** ftfy remove_control_chars: keeps \t \n \f \r; removes other C0, DEL, deprecated format chars, BOM, annotation chars. */
export function removeControlChars(text: string): string {
  return text.replace(/[\x00-\x08\x0b\x0e-\x1f\x7f\u206a-\u206f\ufeff\ufff9-\ufffc]/g, '');
}

// ---------------------------------------------------------------- mojibake (conservative)

function encodeLatin1(text: string): Uint8Array | null {
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c > 0xff) return null;
    out[i] = c;
  }
  return out;
}

function encodeSloppy1252(text: string): Uint8Array | null {
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    // 0x1a is the sloppy codec's stand-in for U+FFFD, so a literal \x1a is not encodable.
    if ((c < 0x80 && c !== 0x1a) || (c >= 0xa0 && c <= 0xff)) out[i] = c;
    else {
      const b = SLOPPY1252_ENCODE.get(c);
      if (b === undefined) return null;
      out[i] = b;
    }
  }
  return out;
}

// 2-byte UTF-8 leads that, read as Latin-1, are the usual start of mojibake (Latin-1 supplement,
// Latin Extended-A, combining marks, Greek, Cyrillic). Others (É», ß”) are more often real text.
const MOJIBAKE_LEADS = new Set([0xc2, 0xc3, 0xc4, 0xc5, 0xcc, 0xcd, 0xce, 0xcf, 0xd0, 0xd1]);
const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function redecode(bytes: Uint8Array): string | null {
  for (const b of bytes) if (b >= 0xc2 && b <= 0xdf && !MOJIBAKE_LEADS.has(b)) return null;
  try {
    return UTF8.decode(bytes);
  } catch {
    return null;
  }
}

function redecodeWhole(text: string): string | null {
  for (const enc of [encodeLatin1, encodeSloppy1252]) {
    const bytes = enc(text);
    if (bytes === null) continue;
    const fixed = redecode(bytes);
    if (fixed !== null) return fixed;
  }
  return null;
}

// ftfy UTF8_DETECTOR_RE restricted to Latin-1 / Windows-1252: a lead char then the right number of
// continuation chars (bytes 0x80-0xbf as Latin-1 or as Windows-1252).
const CONT = `[\\x80-\\xbf${CP1252_HIGH.replace(/[\x80-\x9f]/g, '')}]`;
const UTF8_DETECTOR_RE = new RegExp(`[\\xc2-\\xdf]${CONT}|[\\xe0-\\xef]${CONT}{2}|[\\xf0-\\xf4]${CONT}{3}`, 'g');

// Punctuation that real text puts right after a letter ("Brontë…”", "IKEA™"): not evidence of mojibake.
const PLAUSIBLE_AFTER_LETTER = new Set('\u2019\u2018\u201d\u201c\u201e\u2026\u2013\u2014\u2022\xab\xbb\xb7\xae\xa9\xb0\u2122\xb9\xb2\xb3\xbf\xa1\xa0\u2039\u203a');

function isMojibakeRun(run: string): boolean {
  if (run.length === 2 && (run[0] === '\xc2' || run[0] === '\xc3')) return true;
  for (let i = 1; i < run.length; i++) if (!PLAUSIBLE_AFTER_LETTER.has(run[i])) return true;
  return false;
}

/** One repair step of UTF-8 that was decoded as Latin-1 / Windows-1252 ("cafÃ©" -> "café"). */
function fixEncodingOneStep(text: string): string {
  if (!/[^\x00-\x7f]/.test(text)) return text;
  let bad = false;
  for (const m of text.matchAll(UTF8_DETECTOR_RE)) if (isMojibakeRun(m[0])) { bad = true; break; }
  if (!bad) return text;
  const whole = redecodeWhole(text);
  if (whole !== null) return whole;
  // Mojibake embedded in otherwise fine text ("café itâ€™s"): fix each run on its own.
  return text.replace(UTF8_DETECTOR_RE, (m) => (m.length < text.length && isMojibakeRun(m) ? redecodeWhole(m) ?? m : m));
}

/** Mojibake repair, repeated for text that was mis-decoded more than once. */
export function fixEncoding(text: string): string {
  for (let i = 0; i < 16; i++) {
    const next = fixEncodingOneStep(text);
    if (next === text) break;
    text = next;
  }
  return text;
}

// ---------------------------------------------------------------- fix_text

function fixSegment(text: string, unescapeHtml: boolean): string {
  // ftfy repeats until nothing changes; every step only shrinks or canonicalises, so this converges fast.
  for (let i = 0; i < 64; i++) {
    const orig = text;
    if (unescapeHtml) text = ftfyUnescapeHtml(text);
    text = fixEncoding(text);
    text = fixC1Controls(text);
    text = fixLatinLigatures(text);
    text = fixCharacterWidth(text);
    text = uncurlQuotes(text);
    text = fixLineBreaks(text);
    text = fixSurrogates(text);
    text = removeTerminalEscapes(text);
    text = removeControlChars(text);
    text = text.normalize('NFC');
    if (text === orig) break;
  }
  return text;
}

/** ftfy 6 `fix_text(text)` with its default config (see the header for what is approximated). */
export function fixText(text: string): string {
  if (typeof text !== 'string') throw new TypeError(`fixText expects a string, got ${typeof text}`);
  const out: string[] = [];
  let unescapeHtml = true; // ftfy's "auto": switched off for the rest of the text at the first line with '<'
  let pos = 0;
  while (pos < text.length) {
    let end = text.indexOf('\n', pos) + 1;
    if (end === 0) end = text.length;
    const segment = text.slice(pos, end);
    if (unescapeHtml && segment.includes('<')) unescapeHtml = false;
    out.push(fixSegment(segment, unescapeHtml));
    pos = end;
  }
  return out.join('');
}
