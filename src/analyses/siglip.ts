// What compute_siglip.py computes from the pooling head's terms, and the layer shares of the
// through-layers split (which encoder layers feed each pooling head; report/siglip_report.ts).

import type { ThroughLayers } from '../decompose/siglip.ts';
import { ShapeError } from '../errors.ts';

export interface SiglipFeatures {
  /** mlp + out_proj bias [n, d] (compute_siglip's "mlp accuracy" features). */
  mlpRepr: Float32Array;
  /** Σ_h attn + out_proj bias + fc2 bias [n, d] ("attention accuracy": fc2's bias is kept although the MLP is dropped). */
  attnRepr: Float32Array;
  /** Σ_h attn + mlp + out_proj bias [n, d] (its sanity check: the embedding). */
  recon: Float32Array;
}

/** attn [n, H, d], mlp [n, d], out_proj bias and fc2 bias [d] → compute_siglip's three feature sets. */
export function siglipFeatures(attn: { shape: number[]; data: Float32Array }, mlp: Float32Array, outBias: ArrayLike<number>, fc2Bias: ArrayLike<number>): SiglipFeatures {
  const [n, H, d] = attn.shape;
  if (mlp.length !== n * d || outBias.length !== d || fc2Bias.length !== d) throw new ShapeError(`siglipFeatures: attn [${attn.shape}] needs mlp [${n}, ${d}] and biases [${d}]`);
  const mlpRepr = new Float32Array(n * d);
  const attnRepr = new Float32Array(n * d);
  const recon = new Float32Array(n * d);
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < d; k++) {
      let a = 0;
      for (let h = 0; h < H; h++) a += attn.data[(i * H + h) * d + k];
      const m = mlp[i * d + k];
      mlpRepr[i * d + k] = m + outBias[k];
      attnRepr[i * d + k] = a + outBias[k] + fc2Bias[k];
      recon[i * d + k] = m + a + outBias[k];
    }
  }
  return { mlpRepr, attnRepr, recon };
}

/**
 * compute_siglip's head-orthogonality matrix [H, H]: the mean over images of |cos| between two
 * heads' terms, each term centred by its mean over the images.
 */
export function headOrthogonality(attn: { shape: number[]; data: Float32Array }): Float32Array {
  const [n, H, d] = attn.shape;
  const mean = new Float64Array(H * d);
  for (let i = 0; i < n; i++) for (let j = 0; j < H * d; j++) mean[j] += attn.data[i * H * d + j] / n;
  const out = new Float64Array(H * H);
  const c = new Float64Array(H * d);
  for (let i = 0; i < n; i++) {
    for (let h = 0; h < H; h++) {
      let s = 0;
      for (let k = 0; k < d; k++) {
        const v = attn.data[(i * H + h) * d + k] - mean[h * d + k];
        c[h * d + k] = v;
        s += v * v;
      }
      // F.normalize: x / max(‖x‖, 1e-12)
      const nr = Math.max(Math.sqrt(s), 1e-12);
      for (let k = 0; k < d; k++) c[h * d + k] /= nr;
    }
    for (let a = 0; a < H; a++)
      for (let b = 0; b < H; b++) {
        let s = 0;
        for (let k = 0; k < d; k++) s += c[a * d + k] * c[b * d + k];
        out[a * H + b] += Math.abs(s) / n;
      }
  }
  return Float32Array.from(out);
}

/** headOrthogonality of every attention block a store keeps (SigLIP: its pooling head). */
export function storeHeadOrthogonality(store: { attn: { shape: number[]; data: Float32Array }; manifest: { layers: number[] } }): { layer: number; matrix: number[][] }[] {
  const [n, Lk, H, d] = store.attn.shape;
  return store.manifest.layers.map((layer, j) => {
    const a = new Float32Array(n * H * d);
    for (let i = 0; i < n; i++) a.set(store.attn.data.subarray((i * Lk + j) * H * d, (i * Lk + j + 1) * H * d), i * H * d);
    const m = headOrthogonality({ shape: [n, H, d], data: a });
    return { layer, matrix: Array.from({ length: H }, (_, r) => Array.from(m.subarray(r * H, (r + 1) * H))) };
  });
}

export interface LayerShares {
  /** Row labels of `shares`' columns: 'embedding', 'layer 0' … 'layer L−1', 'constant'. */
  columns: string[];
  /** [H', L+2]: mean over images of ⟨component, attn_{h'}⟩ / ‖attn_{h'}‖² (each row sums to 1). */
  shares: Float64Array;
  /** [H', L, H]: the same per encoder head (its attention output only). */
  headShares: Float64Array;
  images: number;
}

/**
 * How much of each pooling head's attention term each encoder layer carries: the projection of
 * the layer's part (its heads, its out_proj bias and its MLP) onto the pooling head's term, as a
 * fraction of the term's squared norm, averaged over images. The embedding and the constant make
 * up the rest, so a row sums to 1.
 */
export function layerShares(t: ThroughLayers): LayerShares {
  if (t.spatial) throw new ShapeError('layerShares takes the token-summed split (without --spatial)');
  const [B, L, H, Hp, d] = t.heads.shape;
  const shares = new Float64Array(Hp * (L + 2));
  const headShares = new Float64Array(Hp * L * H);
  for (let b = 0; b < B; b++) {
    for (let hp = 0; hp < Hp; hp++) {
      const a = t.attn.data.subarray((b * Hp + hp) * d, (b * Hp + hp + 1) * d);
      let nn = 0;
      for (let k = 0; k < d; k++) nn += a[k] * a[k];
      if (!(nn > 0)) continue;
      const proj = (src: Float32Array, o: number) => {
        let s = 0;
        for (let k = 0; k < d; k++) s += src[o + k] * a[k];
        return s / nn / B;
      };
      const row = hp * (L + 2);
      shares[row] += proj(t.embed.data, (b * Hp + hp) * d);
      shares[row + L + 1] += proj(t.constant.data, hp * d);
      for (let l = 0; l < L; l++) {
        let s = proj(t.bias.data, ((b * L + l) * Hp + hp) * d) + proj(t.mlp.data, ((b * L + l) * Hp + hp) * d);
        for (let h = 0; h < H; h++) {
          const x = proj(t.heads.data, (((b * L + l) * H + h) * Hp + hp) * d);
          headShares[(hp * L + l) * H + h] += x;
          s += x;
        }
        shares[row + 1 + l] += s;
      }
    }
  }
  return { columns: ['embedding', ...Array.from({ length: L }, (_, l) => `layer ${l}`), 'constant'], shares, headShares, images: B };
}
