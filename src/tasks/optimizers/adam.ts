// torch.optim.Adam, the single-tensor ("for-loop", foreach=False) path of
// torch/optim/adam.py `_single_tensor_adam` (torch 2.x, capturable=False, maximize=False),
// replayed in float32 operation by operation so that a trajectory matches torch on CPU to
// float32 rounding. Kingma & Ba 2015, Algorithm 1; amsgrad: Reddi et al. 2018.
//
// Which ATen CPU kernels fuse a multiply-add (measured against torch 2.13 on AVX512 and
// matching ATen's vectorised kernels, which call vec::fmadd):
//   grad.add(param, alpha=wd)            fma(param, wd, grad)
//   exp_avg.lerp_(grad, 1 - beta1)       fma(w, grad - exp_avg, exp_avg) for |w| < 0.5,
//                                        else fma(w - 1, grad - exp_avg, grad)
//   exp_avg_sq.mul_(b2).addcmul_(g, g, value=1 - b2)   fma((1 - b2) * g, g, exp_avg_sq * b2)
//   param.addcdiv_(exp_avg, denom, value=-step_size)   param + ((-step_size * exp_avg) / denom)
// The scalars (lr / bias_correction1, sqrt(bias_correction2)) are computed in float64 as
// Python does and rounded to float32 when they enter a kernel.
import type { AdamSpec } from '../../../schemas/optimizer.ts'

const f = Math.fround

/** float32 fused multiply-add: a*b is exact in float64 for float32 a, b; one rounding to
 * float64 and one to float32 (double rounding differs from a true fma only in rare ties). */
function fma32 (a: number, b: number, c: number): number {
  return f(a * b + c)
}

/** Names of the per-parameter state tensors, as in torch's optimizer.state[p]. */
export function adamSlots (spec: AdamSpec): string[] {
  return spec.amsgrad ? ['exp_avg', 'exp_avg_sq', 'max_exp_avg_sq'] : ['exp_avg', 'exp_avg_sq']
}

/**
 * One Adam update of one parameter tensor in place. `step` is the step number after the
 * increment (torch: `step_t += 1` before the bias corrections); `slots` are the tensors
 * named by adamSlots(), zero before the first step as torch initialises them.
 */
export function adamStep (spec: AdamSpec, param: Float32Array, grad: Float32Array, slots: Float32Array[], step: number): void {
  const [beta1, beta2] = spec.betas
  const [expAvg, expAvgSq, maxExpAvgSq] = slots
  const wd = f(spec.weight_decay)
  // lerp's weight and the branch ATen takes (aten/src/ATen/native/Lerp.h)
  const w = f(1 - beta1)
  const small = Math.abs(w) < 0.5
  const coef = small ? w : f(w - 1)
  const b2 = f(beta2)
  const c2 = f(1 - beta2)
  const eps = f(spec.eps)
  // Python floats: bias_correction1 = 1 - beta1 ** step; step_size = lr / bias_correction1;
  // bias_correction2_sqrt = bias_correction2 ** 0.5
  const biasCorrection1 = 1 - beta1 ** step
  const biasCorrection2 = 1 - beta2 ** step
  const negStepSize = f(-(spec.lr / biasCorrection1))
  const bc2Sqrt = f(Math.sqrt(biasCorrection2))
  const n = param.length
  for (let i = 0; i < n; i++) {
    const p = param[i]
    const g = wd !== 0 ? fma32(p, wd, grad[i]) : grad[i]
    const m0 = expAvg[i]
    const d = f(g - m0)
    const m = small ? fma32(coef, d, m0) : fma32(coef, d, g)
    expAvg[i] = m
    const v = fma32(f(c2 * g), g, f(expAvgSq[i] * b2))
    expAvgSq[i] = v
    let vv = v
    if (maxExpAvgSq !== undefined) {
      // torch.maximum propagates NaN; Math.max does too
      vv = Math.max(maxExpAvgSq[i], v)
      maxExpAvgSq[i] = vv
    }
    const denom = f(f(f(Math.sqrt(vv)) / bc2Sqrt) + eps)
    param[i] = f(p + f(f(negStepSize * m) / denom))
  }
}
