// softplus(x) = log(1 + e^x), accurate for every x on every backend. The contrastive losses are
// softplus(n − p) (negatives' logsumexp minus the positive); when the positive dominates, e^x is
// tiny and log(1 + e^x) in float32 rounds 1 + e^x, losing the whole answer (the wasm and tfjs
// kernels differ here). max(x, 0) + log1p(e^{−|x|}) keeps full relative precision; its
// gradient is written out as sigmoid(x) (the composite's gradient is 0 at x = 0, not 1/2).
import * as tf from '@tensorflow/tfjs'

/**
 * log(1 + u) to a few ulps for u >= 0 using only log: u · log(w) / (w − 1) with w = fl(1 + u),
 * and u itself where w rounds to 1 (Goldberg 1991, "What every computer scientist should know
 * about floating-point arithmetic", Theorem 4). tfjs-backend-wasm 4.22's Log1p is log(1 + u) in
 * float32 (19% off at u = 1e-7), so tf.log1p is not used.
 */
function log1pAccurate (u: tf.Tensor): tf.Tensor {
  const w = tf.add(u, 1)
  const wm1 = tf.sub(w, 1)
  return tf.where(tf.equal(wm1, 0), u, tf.div(tf.mul(u, tf.log(w)), wm1))
}

const op = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
  const x = args[0] as tf.Tensor
  const save = args[1] as tf.GradSaveFunc
  // x is an intermediate that the forward scope frees before the backward pass: save it.
  save([x])
  const value = tf.add(tf.relu(x), log1pAccurate(tf.exp(tf.neg(tf.abs(x)))))
  return { value, gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.mul(dy, tf.sigmoid(saved[0])) }
})

export function softplus<T extends tf.Tensor> (x: T): T {
  return op(x) as T
}
