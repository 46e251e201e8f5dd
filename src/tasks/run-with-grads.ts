// One evaluation of a loss over host tensors on the active tfjs backend: forward, and when asked
// the gradients with respect to every input, all inside one tidy scope so that the live tensor
// count after equals the count before (STYLE.md principle 6).
import * as tf from '@tensorflow/tfjs'
import { LossServerError } from '../errors.ts'
import type { HostTensor } from '../tensor.ts'

export interface LossParts {
  loss: tf.Scalar
  /** extra scalars reported beside the loss (read back after the pass) */
  terms?: tf.Tensor1D
}

export interface HostResult {
  loss: number
  terms?: Float32Array
  /** one per input, same shapes; absent when gradients were not asked for */
  grads?: HostTensor[]
}

/** A loss that overflowed float32 is the client's inputs' fault: 422 non_finite, never NaN in a 200. */
export function checkFiniteLoss (loss: number): void {
  if (!Number.isFinite(loss)) {
    throw new LossServerError('non_finite', `the loss overflowed float32 (got ${loss}); the inputs are too large for this configuration (scale them down, or use a larger temperature / a tclip)`, ['inputs'])
  }
}

/**
 * Runs `fn` on tensors made from `xs`. `fn` must use every input it is given (tfjs refuses the
 * gradient of an unconnected input); callers pass only the inputs the loss depends on.
 */
export function runWithGrads (xs: HostTensor[], gradients: boolean, fn: (xs: tf.Tensor[]) => LossParts): HostResult {
  let terms: tf.Tensor1D | undefined
  let result: { loss: number, grads?: HostTensor[] } = { loss: NaN }
  try {
    // The tidy returns nothing: tfjs walks a returned container element by element looking for
    // tensors, which for host gradients of millions of floats is slow (and overflows a Set).
    tf.tidy(() => {
      const ts = xs.map(x => tf.tensor(x.data, x.shape, 'float32'))
      const f = (...args: tf.Tensor[]): tf.Scalar => {
        const parts = fn(args)
        // kept: survives the gradient's own forward scope; disposed in `finally`.
        if (parts.terms) terms = tf.keep(parts.terms)
        return parts.loss
      }
      if (!gradients) {
        result = { loss: f(...ts).dataSync()[0] }
        return
      }
      const { value, grads } = tf.valueAndGrads(f)(ts)
      result = {
        loss: value.dataSync()[0],
        grads: grads.map((g, i) => ({ shape: [...xs[i].shape], data: g.dataSync() as Float32Array }))
      }
    })
    const out: HostResult = { ...result, ...(terms ? { terms: terms.dataSync() as Float32Array } : {}) }
    checkFiniteLoss(out.loss)
    return out
  } finally {
    terms?.dispose()
  }
}
