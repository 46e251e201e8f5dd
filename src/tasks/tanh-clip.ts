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

interface TfBackend {
  binding: { TF_ATTR_TYPE: number, TF_FLOAT: number }
  executeSingleOutput: (name: string, attrs: unknown[], inputs: tf.Tensor[]) => tf.Tensor
}

/**
 * dy · (1 − y²) for y = tanh(x): the gradient of tanh given its output. On tensorflow this is
 * TensorFlow's own TanhGrad kernel, one pass instead of three (square, subtract, multiply) over
 * the b·b·L score matrices (tfjs registers no kernel for it; tfjs-node runs any TensorFlow op by
 * name). Other backends compose it.
 */
export function tanhGrad<T extends tf.Tensor> (y: T, dy: T): T {
  if (tf.getBackend() === 'tensorflow') {
    const be = tf.backend() as unknown as TfBackend
    return be.executeSingleOutput('TanhGrad', [{ name: 'T', type: be.binding.TF_ATTR_TYPE, value: be.binding.TF_FLOAT }], [y, dy]) as T
  }
  return tf.mul(dy, tf.sub(1, tf.square(y))) as T
}
