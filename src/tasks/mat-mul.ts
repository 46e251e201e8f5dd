// 2-D matrix product op(a)·op(b) that runs each backend's fast path, forward and backward.
//
// tfjs-backend-wasm 4.22 hands only untransposed products to XNNPACK; with transposeA or
// transposeB it runs a plain loop about ten times slower (bench/kernels.ts, (200, 1280) x
// (1280, 2000): 14-19 GFLOP/s untransposed, 1.0-1.5 transposed). tfjs's own matMul gradient
// uses those flags, so on wasm every backward product was slow. Here wasm transposes the
// operand explicitly (a copy, cheap next to the product) and multiplies untransposed; tensorflow
// and cpu pass the flags through (free there). The gradient is written with this same function.
import * as tf from '@tensorflow/tfjs'

function product (a: tf.Tensor2D, b: tf.Tensor2D, ta: boolean, tb: boolean): tf.Tensor2D {
  if (tf.getBackend() !== 'wasm') return tf.matMul(a, b, ta, tb)
  return tf.matMul(ta ? tf.transpose(a) : a, tb ? tf.transpose(b) : b)
}

type Pair = [tf.Tensor2D, tf.Tensor2D]

const ops = new Map<string, (a: tf.Tensor2D, b: tf.Tensor2D) => tf.Tensor2D>()

function op (ta: boolean, tb: boolean): (a: tf.Tensor2D, b: tf.Tensor2D) => tf.Tensor2D {
  const key = `${ta}${tb}`
  let f = ops.get(key)
  if (!f) {
    f = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
      const [a, b] = args as Pair
      ;(args[2] as tf.GradSaveFunc)([a, b])
      return {
        value: product(a, b, ta, tb),
        // c = op(a)·op(b); each case is the transpose bookkeeping of dc·op(b)ᵀ and op(a)ᵀ·dc
        gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
          const [sa, sb] = saved as Pair
          const d = dy as tf.Tensor2D
          if (!ta && !tb) return [product(d, sb, false, true), product(sa, d, true, false)]
          if (!ta && tb) return [product(d, sb, false, false), product(d, sa, true, false)]
          if (ta && !tb) return [product(sb, d, false, true), product(sa, d, false, false)]
          return [product(sb, d, true, true), product(d, sa, true, true)]
        }
      }
    }) as unknown as (a: tf.Tensor2D, b: tf.Tensor2D) => tf.Tensor2D
    ops.set(key, f)
  }
  return f
}

/** op(a)·op(b) for 2-D a and b, differentiable w.r.t. both. */
export function matMul (a: tf.Tensor, b: tf.Tensor, transposeA = false, transposeB = false): tf.Tensor2D {
  return op(transposeA, transposeB)(a as tf.Tensor2D, b as tf.Tensor2D)
}
