// relu with its gradient written as dy · (y > 0). tfjs's own relu gradient is dy · step(x), and
// tfjs-node 4.22 builds Step from six kernels, two of them full-size constants made in
// JavaScript (isNaN, greater, ones, fill, where, select): on cpc's (b·h·w, C) residual stream
// that was the largest non-matmul cost. On tensorflow the gradient is TensorFlow's ReluGrad
// kernel (one pass; tfjs registers no kernel for it, tfjs-node runs any TensorFlow op by name);
// elsewhere mul(dy, cast(y > 0)). At x = 0 both give 0 (PyTorch's convention as well).
import * as tf from '@tensorflow/tfjs'

interface TfBackend {
  binding: { TF_ATTR_TYPE: number, TF_FLOAT: number }
  executeSingleOutput: (name: string, attrs: unknown[], inputs: tf.Tensor[]) => tf.Tensor
}

/** dy where y > 0, else 0 (y = relu(x); TensorFlow's ReluGrad(gradients, features) tests features > 0). */
function reluGrad (dy: tf.Tensor, y: tf.Tensor): tf.Tensor {
  if (tf.getBackend() === 'tensorflow') {
    const be = tf.backend() as unknown as TfBackend
    return be.executeSingleOutput('ReluGrad', [{ name: 'T', type: be.binding.TF_ATTR_TYPE, value: be.binding.TF_FLOAT }], [dy, y])
  }
  return tf.mul(dy, tf.cast(tf.greater(y, 0), 'float32'))
}

const op = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
  const y = tf.relu(args[0] as tf.Tensor)
  ;(args[1] as tf.GradSaveFunc)([y])
  return { value: y, gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => reluGrad(dy, saved[0]) }
})

export function relu<T extends tf.Tensor> (x: T): T {
  return op(x) as T
}
