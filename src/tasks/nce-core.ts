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
import * as tf from '@tensorflow/tfjs'
import { gatherRows } from './gather-rows.ts'
import { softplus } from './softplus.ts'
import { tanhClip } from './tanh-clip.ts'

export const REGULARIZER_WEIGHT = 0.05

/** Flat rows i·(b+1) of a (b·b, L) view: the block diagonal (sample i against its partner). */
export function diagonalRows (b: number): Int32Array {
  const rows = new Int32Array(b)
  for (let i = 0; i < b; i++) rows[i] = i * (b + 1)
  return rows
}

/** (b, b, 1) additive mask: −Infinity on the block diagonal, 0 elsewhere. */
export function partnerMask (b: number): tf.Tensor3D {
  const m = new Float32Array(b * b)
  for (let i = 0; i < b; i++) m[i * (b + 1)] = -Infinity
  return tf.tensor3d(m, [b, b, 1], 'float32')
}

export interface NceParts { nce: tf.Scalar, regularizer: tf.Scalar }

/** NCE and regularizer of raw scores (b, b·L); call inside a tidy / gradient scope. */
export function amdimNceFromScores (raw: tf.Tensor2D, b: number, L: number, tclip: number | null): NceParts {
  const regularizer = tf.mul(tf.mean(tf.square(raw)), REGULARIZER_WEIGHT) as tf.Scalar
  const s = tanhClip(raw, tclip)
  const pos = gatherRows(tf.reshape(s, [b * b, L]), diagonalRows(b)) // (b, L)
  const negs = tf.reshape(tf.add(tf.reshape(s, [b, b, L]), partnerMask(b)), [b, b * L])
  const n = tf.logSumExp(negs, 1, true) // (b, 1)
  const nce = tf.mean(softplus(tf.sub(n, pos))) as tf.Scalar
  return { nce, regularizer }
}
