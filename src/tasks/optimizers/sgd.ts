// torch.optim.SGD, the single-tensor path of torch/optim/sgd.py `_single_tensor_sgd`
// (maximize=False), in float32 operation by operation like ./adam.ts. Momentum and
// Nesterov as torch writes them (Sutskever et al. 2013, with torch's placement of lr):
//   g = grad + wd * param                         fma(param, wd, grad)
//   buf = g on the first step (a clone, not (1 - dampening) * g), else
//   buf = momentum * buf + (1 - dampening) * g    fma(g, 1 - dampening, buf * momentum)
//   g = nesterov ? g + momentum * buf : buf       fma(buf, momentum, g)
//   param = param - lr * g                        fma(g, -lr, param)
import type { SgdSpec } from '../../../schemas/optimizer.ts'

const f = Math.fround

function fma32 (a: number, b: number, c: number): number {
  return f(a * b + c)
}

/** Per-parameter state names: torch keeps `momentum_buffer` only when momentum != 0. */
export function sgdSlots (spec: SgdSpec): string[] {
  return spec.momentum !== 0 ? ['momentum_buffer'] : []
}

/**
 * One SGD update of one parameter tensor in place. `first` says the momentum buffer does
 * not exist yet (torch: momentum_buffer is None) and is to be set to the gradient.
 */
export function sgdStep (spec: SgdSpec, param: Float32Array, grad: Float32Array, slots: Float32Array[], first: boolean): void {
  const wd = f(spec.weight_decay)
  const momentum = f(spec.momentum)
  const keep = f(1 - spec.dampening)
  const negLr = f(-spec.lr)
  const buf = slots[0]
  const n = param.length
  for (let i = 0; i < n; i++) {
    const p = param[i]
    let g = wd !== 0 ? fma32(p, wd, grad[i]) : grad[i]
    if (buf !== undefined) {
      const b = first ? g : fma32(g, keep, f(buf[i] * momentum))
      buf[i] = b
      g = spec.nesterov ? fma32(b, momentum, g) : b
    }
    param[i] = fma32(g, negLr, p)
  }
}
