// Text widths for laying out SVG figures without a browser: the advance widths of DejaVu Sans
// (the font the figures name first; Debian's fontconfig answers 'sans-serif' with it), in
// thousandths of an em, for printable ASCII and the symbols the reports use. Characters not in the
// table count as a full em, which is wider than almost any glyph, so a layout that fits by these
// numbers fits when drawn. Read from DejaVuSans.ttf / DejaVuSans-Bold.ttf (hmtx / unitsPerEm).

export const FIGURE_FONT = "'DejaVu Sans', sans-serif";

// ' ' (32) … '~' (126)
const REGULAR = [
  318, 401, 460, 838, 636, 950, 780, 275, 390, 390, 500, 838, 318, 361, 318, 337, 636, 636, 636, 636, 636, 636, 636, 636, 636, 636, 337, 337, 838, 838,
  838, 531, 1000, 684, 686, 698, 770, 632, 575, 775, 752, 295, 295, 656, 557, 863, 748, 787, 603, 787, 695, 635, 611, 732, 684, 989, 685, 611, 685, 390,
  337, 390, 838, 500, 500, 613, 635, 550, 635, 615, 352, 635, 634, 278, 278, 579, 278, 974, 634, 612, 635, 635, 411, 521, 392, 634, 592, 818, 592, 592,
  525, 636, 337, 636, 838,
];
const BOLD = [
  348, 456, 521, 838, 696, 1002, 872, 306, 457, 457, 523, 838, 380, 415, 380, 365, 696, 696, 696, 696, 696, 696, 696, 696, 696, 696, 400, 400, 838, 838,
  838, 580, 1000, 774, 762, 734, 830, 683, 683, 821, 837, 372, 372, 775, 637, 995, 837, 850, 733, 850, 770, 720, 682, 812, 774, 1103, 771, 724, 725, 457,
  365, 457, 838, 500, 500, 675, 716, 593, 716, 678, 435, 716, 712, 343, 343, 665, 343, 1042, 712, 687, 716, 716, 493, 595, 478, 712, 652, 924, 645, 652,
  582, 712, 365, 712, 838,
];
const SYMBOLS: Record<string, [number, number]> = {
  '…': [1000, 1000], '→': [838, 838], '≤': [838, 838], '≥': [838, 838], '−': [838, 838], '·': [318, 380], '×': [838, 838], '–': [500, 500],
  '—': [1000, 1000], '’': [318, 380], '‘': [318, 380], 'é': [615, 678], 'ö': [612, 687], 'ü': [634, 712], 'μ': [636, 736], 'σ': [634, 779],
  '‖': [500, 500], '²': [401, 438], '±': [838, 838],
};

/** Width in px of `s` drawn at `size` px (bold or regular). */
export function textWidth(s: string, size: number, bold = false): number {
  let em = 0;
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (c >= 32 && c <= 126) em += (bold ? BOLD : REGULAR)[c - 32];
    else em += SYMBOLS[ch]?.[bold ? 1 : 0] ?? 1000;
  }
  return (em / 1000) * size;
}

/**
 * `s` broken into lines no wider than `maxWidth`: at spaces where it can, inside a word only when
 * the word alone is too wide. Nothing is dropped: the lines joined by spaces (or nothing, inside a
 * word) give `s` back, its runs of white space read as one space.
 */
export function wrapText(s: string, maxWidth: number, size: number, bold = false): string[] {
  const lines: string[] = [];
  let line = '';
  const fits = (t: string) => textWidth(t, size, bold) <= maxWidth;
  for (const word of s.replace(/\s+/g, ' ').trim().split(' ')) {
    const joined = line ? `${line} ${word}` : word;
    if (fits(joined)) {
      line = joined;
      continue;
    }
    if (line) lines.push(line);
    line = '';
    let rest = word;
    while (!fits(rest)) {
      let k = 1;
      while (k < rest.length && fits(rest.slice(0, k + 1))) k++;
      lines.push(rest.slice(0, k));
      rest = rest.slice(k);
    }
    line = rest;
  }
  lines.push(line);
  return lines;
}
