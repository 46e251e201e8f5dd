// relu with its gradient written as dy · (y > 0). tfjs's own relu gradient is dy · step(x), and
// tfjs-node 4.22 builds Step from six kernels, two of them full-size constants made in
// JavaScript (isNaN, greater, ones, fill, where, select): on cpc's (b·h·w, C) residual stream
// that was the largest non-matmul cost. At x = 0 both give 0 (PyTorch's convention as well).
import * as tf from '@tensorflow/tfjs'

const op = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
  const y = tf.relu(args[0] as tf.Tensor)
  ;(args[1] as tf.GradSaveFunc)([y])
  return { value: y, gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.mul(dy, tf.cast(tf.greater(saved[0], 0), 'float32')) }
})

export function relu<T extends tf.Tensor> (x: T): T {
  return op(x) as T
}
