// amdim-nce's validation (no tfjs: the main thread loads it); the math is in amdim-nce.ts.
import { LossServerError } from '../errors.ts'
import { amdimNceConfig, amdimNceOptions, type AmdimNceConfig, type AmdimNceOptions } from '../../schemas/kinds/amdim-nce.ts'
import { checkBatch, checkTensor, formatShape, noParams, tensorInput } from './input-checks.ts'
import type { CommonOptions, KindSpec } from './types.ts'

export type AmdimNceKindOptions = CommonOptions & AmdimNceOptions

export const amdimNceSpec: KindSpec<AmdimNceConfig, AmdimNceKindOptions> = {
  name: 'amdim-nce',
  configSchema: amdimNceConfig,
  optionsSchema: amdimNceOptions,
  inputs: { anchor: 'tensor', positive: 'tensor' },
  hasParams: false,

  check (_config, inputs, params) {
    noParams('amdim-nce', params)
    const a = tensorInput('amdim-nce', inputs, 'anchor')
    const p = tensorInput('amdim-nce', inputs, 'positive')
    checkTensor(a, ['inputs', 'anchor'], 2, '(b, d)')
    checkTensor(p, ['inputs', 'positive'], 2, '(d, b·L)')
    const [b, d] = a.shape
    const [dp, n] = p.shape
    if (dp !== d) {
      throw new LossServerError('shape_mismatch', `inputs.positive has shape ${formatShape(p.shape)}: its first dimension ${dp} must equal d = ${d} of inputs.anchor ${formatShape(a.shape)} (positive is (d, b·L))`, ['inputs', 'positive', 'shape'])
    }
    checkBatch(b, ['inputs', 'anchor'])
    if (n % b !== 0) {
      throw new LossServerError('shape_mismatch', `inputs.positive has shape ${formatShape(p.shape)}: its second dimension ${n} must be b·L, a multiple of b = ${b} from inputs.anchor ${formatShape(a.shape)}`, ['inputs', 'positive', 'shape'])
    }
  }
}
