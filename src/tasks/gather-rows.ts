// Row gather with a gradient that every backend can run. tfjs's own gradient of `gather` is
// UnsortedSegmentSum, which tfjs-backend-wasm 4.22 does not implement; the rows gathered here
// are always distinct (positives on a block diagonal, one sampled location per sample), so
// the gradient is a plain scatter (ScatterNd, on every backend) of dy into zeros.
import * as tf from '@tensorflow/tfjs'

/** y[k] = x[rows[k]] for a 2-D x; `rows` must be distinct. */
export function gatherRows (x: tf.Tensor2D, rows: Int32Array): tf.Tensor2D {
  const shape = x.shape
  const k = rows.length
  const op = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const value = tf.gather(args[0] as tf.Tensor2D, tf.tensor1d(rows, 'int32'), 0)
    const gradFunc = (dy: tf.Tensor): tf.Tensor => tf.scatterND(tf.tensor2d(rows, [k, 1], 'int32'), dy, shape)
    return { value, gradFunc }
  })
  return op(x) as tf.Tensor2D
}

/**
 * x with rows `idx` (k, 1) replaced by `values` (k, L): one copy pass (TensorScatterUpdate).
 * tfjs-backend-cpu 4.22's TensorScatterUpdate writes into its input's buffer instead of a copy
 * (scatterImpl reuses `bufferSync(tensor)`), which would corrupt a tensor still in use (u when
 * tclip is null); there the input is copied first.
 */
export function overwriteRows (x: tf.Tensor2D, idx: tf.Tensor2D, values: tf.Tensor2D): tf.Tensor2D {
  const base = tf.getBackend() === 'cpu' ? tf.add(x, 0) : x
  return tf.tensorScatterUpdate(base, idx, values) as tf.Tensor2D
}
