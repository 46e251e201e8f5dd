// NCHW feature maps <-> rows (b·h·w, c) (row n·h·w + y·w + x), the layout the contrastive
// matMuls want (feature-map-pass.ts).
//
// On the tensorflow backend the per-sample transpose (c, h·w) <-> (h·w, c) is computed as a
// batched product with the h·w identity: TensorFlow's Transpose kernel is slow for these shapes
// (a small h·w as the innermost dimension), and the product, which its matmul kernels run near
// peak, took about half the CPU time on Bolts' 5×5 and 7×7 maps of 1280 channels (measured with
// bench/kernels.ts; see docs/performance-kernels.md). It is exact: each output is one input
// times 1.0 plus zeros (the inputs are finite: NaN and Infinity are refused at the edge and a
// non-finite loss is an error). Other backends transpose.
import * as tf from '@tensorflow/tfjs'

function byIdentity (): boolean {
  return tf.getBackend() === 'tensorflow'
}

/** (b, c, h, w) -> (b·h·w, c) */
export function toRows (x: tf.Tensor): tf.Tensor2D {
  const [b, c, h, w] = x.shape
  const hw = h * w
  if (hw === 1) return tf.reshape(x, [b, c])
  if (!byIdentity()) return tf.reshape(tf.transpose(x, [0, 2, 3, 1]), [b * hw, c])
  // (hw, hw) · (b, c, hw)ᵀ per sample = (b, hw, c)
  return tf.reshape(tf.matMul(tf.eye(hw), tf.reshape(x, [b, c, hw]), false, true), [b * hw, c])
}

/** (b·h·w, c) -> (b, c, h, w) */
export function fromRows (rows: tf.Tensor2D, shape: readonly number[]): tf.Tensor4D {
  const [b, c, h, w] = shape
  const hw = h * w
  if (hw === 1) return tf.reshape(rows, [b, c, 1, 1])
  if (!byIdentity()) return tf.transpose(tf.reshape(rows, [b, h, w, c]), [0, 3, 1, 2])
  // (b, hw, c)ᵀ · (hw, hw) per sample = (b, c, hw)
  return tf.reshape(tf.matMul(tf.reshape(rows, [b, hw, c]), tf.eye(hw), true, false), [b, c, h, w])
}
