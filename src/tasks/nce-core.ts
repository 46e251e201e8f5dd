// The NCE of Bolts' `AmdimNCELoss` (mask = identity) on a score matrix, shared by amdim-nce and
// feature-map-contrastive (../../../shared/spec/LOSSES.md "amdim-nce"; Bachman et al. 2019, AMDIM).
//
// raw (b, b·L): raw[i, j·L + l] = <src_i, trg_{j,l}> / sqrt(d).
//   regularizer = 0.05 * mean(raw²)                      (before clipping, as Bolts' lgt_reg)
//   s = tanh_clip(raw, tclip)
//   p[i, l] = s[i, i·L + l]                               (gathered, not masked)
//   n_i = logsumexp_{j≠i, l'} s[i, j·L + l']              (negatives: every other sample)
//   nce = mean_{i,l} [ log(e^p + e^n) − p ] = mean softplus(n_i − p[i, l])   (softplus.ts)
// The partner's block is excluded by adding −Infinity before the logsumexp rather than
// subtracting it from a row total afterwards: (total − partner) cancels catastrophically in
// float32 when the partner dominates. exp(−Infinity − max) is exactly 0, and so is its
// gradient; b ≥ 2 guarantees every row keeps a finite entry. Bolts' row-max shift over the
// negatives cancels mathematically, so this stable form gives the same values.
//
// The gradient is written out rather than taped (the kernels are the cost; see
// docs/performance-kernels.md): with x = n − p, σ = sigmoid(x) / (b·L), E = e^{s − max} over
// the negatives and Z its row sum,
//   d nce / d s[i, j·L + l'] = (Σ_l σ[i, l]) · E / Z        for j ≠ i (softmax of the negatives)
//   d nce / d s[i, i·L + l]  = −σ[i, l]                      (the positives)
//   d s / d raw = 1 − tanh²(raw / tclip),   d regularizer / d raw = 2 · 0.05 · raw / (b·b·L).
import * as tf from '@tensorflow/tfjs'
import { softplus } from './softplus.ts'

export const REGULARIZER_WEIGHT = 0.05

/** Flat rows i·(b+1) of a (b·b, L) view: the block diagonal (sample i against its partner). */
export function diagonalRows (b: number): Int32Array {
  const rows = new Int32Array(b)
  for (let i = 0; i < b; i++) rows[i] = i * (b + 1)
  return rows
}

/** (b, b, 1) mask: `on` on the block diagonal, `off` elsewhere. */
function blockDiagonal (b: number, on: number, off: number): tf.Tensor3D {
  const m = new Float32Array(b * b).fill(off)
  for (let i = 0; i < b; i++) m[i * (b + 1)] = on
  return tf.tensor3d(m, [b, b, 1], 'float32')
}

export interface NceParts {
  nce: tf.Scalar
  regularizer: tf.Scalar
  /** d(weight · (nce + regularizer)) / d raw, (b, b·L); only when a weight was given */
  dRaw?: tf.Tensor2D
}

/**
 * NCE and regularizer of raw scores (b, b·L), and with `weight` the gradient of
 * weight · (nce + regularizer) w.r.t. raw. Call inside a tidy scope; nothing is taped.
 */
export function amdimNce (raw: tf.Tensor2D, b: number, L: number, tclip: number | null, weight?: number): NceParts {
  const size = b * b * L
  const regularizer = tf.mul(tf.sum(tf.square(raw)), REGULARIZER_WEIGHT / size) as tf.Scalar
  const t = tclip === null ? null : tf.tanh(tf.mul(raw, 1 / tclip))
  const s = t === null ? raw : tf.mul(t, tclip as number)
  const negs = tf.reshape(tf.add(tf.reshape(s, [b, b, L]), blockDiagonal(b, -Infinity, 0)), [b, b * L])
  const max = tf.max(negs, 1, true) // finite: b ≥ 2 leaves every row a negative
  const e = tf.exp(tf.sub(negs, max))
  const z = tf.sum(e, 1, true)
  const n = tf.add(tf.log(z), max) // (b, 1)
  const pos = tf.gather(tf.reshape(s, [b * b, L]), tf.tensor1d(diagonalRows(b), 'int32')) // (b, L)
  const x = tf.sub(n, pos)
  const nce = tf.mean(softplus(x)) as tf.Scalar
  if (weight === undefined) return { nce, regularizer }

  const sig = tf.mul(tf.sigmoid(x), weight / (b * L)) // (b, L)
  const dNegs = tf.reshape(tf.mul(e, tf.div(tf.sum(sig, 1, true), z)), [b, b, L]) // 0 on the partner block
  const dS = tf.reshape(tf.add(dNegs, tf.mul(blockDiagonal(b, 1, 0), tf.reshape(tf.neg(sig), [b, 1, L]))), [b, b * L])
  const dClip = t === null ? dS : tf.mul(dS, tf.sub(1, tf.square(t)))
  const dRaw = tf.add(dClip, tf.mul(raw, weight * 2 * REGULARIZER_WEIGHT / size)) as tf.Tensor2D
  return { nce, regularizer, dRaw }
}
