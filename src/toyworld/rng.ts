// Small seeded PRNG so a scene is a pure function of its seed (never Math.random).

/** mulberry32: 32-bit state, good enough for drawing scenes, returns floats in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Mix two integers into a well-spread 32-bit seed (splitmix-style finaliser). */
export function mixSeed(a: number, b: number): number {
  let h = (Math.imul(a >>> 0, 0x9e3779b1) ^ (b >>> 0)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b) >>> 0;
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

export type Rng = () => number;

export function randInt(rng: Rng, lo: number, hiExclusive: number): number {
  return lo + Math.floor(rng() * (hiExclusive - lo));
}

export function pick<T>(rng: Rng, xs: readonly T[]): T {
  return xs[Math.floor(rng() * xs.length)];
}

export function uniform(rng: Rng, lo: number, hi: number): number {
  return lo + rng() * (hi - lo);
}
