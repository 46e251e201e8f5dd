// The NCE of Bolts' `AmdimNCELoss` (mask = identity) on a score matrix, shared by amdim-nce and
// feature-map-contrastive (../../../shared/spec/LOSSES.md "amdim-nce"; Bachman et al. 2019, AMDIM).
//
// The caller passes u = raw / τ (b, b·L) with τ = tclip (1 when tclip is null), folding 1/τ into
// the small (b, d) operand of its product, so no pass over the b·b·L scores divides by τ:
//   raw[i, j·L + l] = <src_i, trg_{j,l}> / sqrt(d) = τ·u
//   regularizer = 0.05 * mean(raw²) = 0.05·τ²·mean(u²)     (before clipping, as Bolts' lgt_reg)
//   s = tanh_clip(raw, tclip) = tclip·tanh(u)              (s = u when tclip is null)
//   p[i, l] = s[i, i·L + l]                                (gathered, not masked)
//   n_i = logsumexp_{j≠i, l'} s[i, j·L + l']               (negatives: every other sample)
//   nce = mean_{i,l} [ log(e^p + e^n) − p ] = mean softplus(n_i − p[i, l])   (softplus.ts)
// The partner's block is excluded by writing −Infinity over it before the logsumexp rather than
// subtracting it from a row total afterwards: (total − partner) cancels catastrophically in
// float32 when the partner dominates. exp(−Infinity) is exactly 0, and so is its gradient;
// b ≥ 2 guarantees every row keeps a finite entry. Bolts' row-max shift over the negatives
// cancels mathematically, so any stable shift gives the same values: with tclip ≤ FIXED_SHIFT_MAX
// the clipped scores lie in (−tclip, tclip), so e^s neither overflows nor underflows in float32
// and no row max (a pass and a subtraction over the scores) is needed.
//
// The gradient is written out rather than taped (the kernels are the cost; see
// docs/performance-kernels.md): with x = n − p, σ = sigmoid(x) / (b·L), E = e^{s − shift} over
// the negatives and Z its row sum,
//   d nce / d s[i, j·L + l'] = (Σ_l σ[i, l]) · E / Z        for j ≠ i (softmax of the negatives)
//   d nce / d s[i, i·L + l]  = −σ[i, l]                      (the positives; written over the
//                                                            partner block, where E is 0)
//   d s / d u = τ·(1 − tanh²(u)),   d regularizer / d u = 2 · 0.05 · τ² · u / (b·b·L).
// The factor τ goes on the small (b, 1) and (b, L) operands before they meet the scores.
import * as tf from '@tensorflow/tfjs'
import { softplus } from './softplus.ts'
import { tanhGrad } from './tanh-clip.ts'
import { overwriteRows } from './gather-rows.ts'

export const REGULARIZER_WEIGHT = 0.05

/** Largest tclip for which the logsumexp skips its row max: e^±30 and b·L·e^30 fit float32. */
export const FIXED_SHIFT_MAX = 30

/** Flat rows i·(b+1) of a (b·b, L) view: the block diagonal (sample i against its partner). */
export function diagonalRows (b: number): Int32Array {
  const rows = new Int32Array(b)
  for (let i = 0; i < b; i++) rows[i] = i * (b + 1)
  return rows
}

export interface NceParts {
  nce: tf.Scalar
  regularizer: tf.Scalar
  /** d(weight · (nce + regularizer)) / du, (b, b·L); only when a weight was given */
  dU?: tf.Tensor2D
}

/** τ of a tclip: what the caller divides the scores by before amdimNce. */
export function scoreScale (tclip: number | null): number {
  return tclip ?? 1
}

/**
 * NCE and regularizer of scores u = raw / τ (b, b·L), and with `weight` the gradient of
 * weight · (nce + regularizer) w.r.t. u. Call inside a tidy scope; nothing is taped.
 */
export function amdimNce (u: tf.Tensor2D, b: number, L: number, tclip: number | null, weight?: number): NceParts {
  const size = b * b * L
  const tau = scoreScale(tclip)
  const regularizer = tf.mul(tf.sum(tf.square(u)), REGULARIZER_WEIGHT * tau * tau / size) as tf.Scalar
  const t = tclip === null ? null : tf.tanh(u)
  const s = t === null ? u : tf.mul(t, tclip as number)
  const diag = diagonalRows(b)
  const diagIdx = tf.tensor2d(diag, [b, 1], 'int32')
  // (b·b, L) view: row i·b + j is sample i against sample j
  const s3 = tf.reshape(s, [b * b, L]) as tf.Tensor2D
  const pos = tf.gather(s3, tf.tensor1d(diag, 'int32')) // (b, L)
  const negs = tf.reshape(overwriteRows(s3, diagIdx, tf.fill([b, L], -Infinity)), [b, b * L])
  let e: tf.Tensor
  let n: tf.Tensor // (b, 1)
  let z: tf.Tensor
  if (tclip !== null && tclip <= FIXED_SHIFT_MAX) {
    e = tf.exp(negs)
    z = tf.sum(e, 1, true)
    n = tf.log(z)
  } else {
    const max = tf.max(negs, 1, true) // finite: b ≥ 2 leaves every row a negative
    e = tf.exp(tf.sub(negs, max))
    z = tf.sum(e, 1, true)
    n = tf.add(tf.log(z), max)
  }
  const x = tf.sub(n, pos)
  const nce = tf.mean(softplus(x)) as tf.Scalar
  if (weight === undefined) return { nce, regularizer }

  // d/ds scaled by τ (the d s/d u factor), on the small operands
  const sig = tf.mul(tf.sigmoid(x), weight * tau / (b * L)) // (b, L)
  const dNegs = tf.mul(e, tf.div(tf.sum(sig, 1, true), z)) as tf.Tensor2D // 0 on the partner block
  const dS = tf.reshape(overwriteRows(tf.reshape(dNegs, [b * b, L]), diagIdx, tf.neg(sig) as tf.Tensor2D), [b, b * L])
  const dClip = t === null ? dS : tanhGrad(t, dS)
  const dU = tf.add(dClip, tf.mul(u, weight * 2 * REGULARIZER_WEIGHT * tau * tau / size)) as tf.Tensor2D
  return { nce, regularizer, dU }
}
