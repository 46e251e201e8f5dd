// tanh_clip(x, t) = t * tanh(x / t): a smooth clip of scores to (-t, t), identity when t is
// null (../../../shared/spec/LOSSES.md "tanh_clip"; Bolts `pl_bolts.losses.self_supervised_learning.tanh_clip`,
// from Bachman et al. 2019, "Learning Representations by Maximizing Mutual Information Across Views").
// **fix**: Bolts raises TypeError for clip_val=None; here null means no clipping.
import * as tf from '@tensorflow/tfjs'

export function tanhClip<T extends tf.Tensor> (x: T, t: number | null): T {
  if (t === null) return x
  if (!(t > 0)) throw new RangeError(`tanhClip: t must be > 0 or null, got ${t}`)
  return tf.mul(tf.tanh(tf.mul(x, 1 / t)), t) as T
}

/** The same function on a JS number (reference implementations, tests). */
export function tanhClipScalar (x: number, t: number | null): number {
  return t === null ? x : t * Math.tanh(x / t)
}
