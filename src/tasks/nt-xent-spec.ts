// nt-xent's validation (no tfjs: the main thread loads it); the math and its header are in
// nt-xent.ts and nt-xent-pass.ts.
import { LossServerError } from '../errors.ts'
import { ntXentConfig, ntXentOptions, type NtXentConfig, type NtXentOptions } from '../../schemas/kinds/nt-xent.ts'
import { checkBatch, checkTensor, formatShape, noParams, sameShape, tensorInput } from './input-checks.ts'
import type { CommonOptions, KindSpec } from './types.ts'

export type NtXentKindOptions = CommonOptions & NtXentOptions

export const ntXentSpec: KindSpec<NtXentConfig, NtXentKindOptions> = {
  name: 'nt-xent',
  configSchema: ntXentConfig,
  optionsSchema: ntXentOptions,
  inputs: { out_1: 'tensor', out_2: 'tensor' },
  hasParams: false,

  check (config, inputs, params, options) {
    noParams('nt-xent', params)
    const o1 = tensorInput('nt-xent', inputs, 'out_1')
    const o2 = tensorInput('nt-xent', inputs, 'out_2')
    checkTensor(o1, ['inputs', 'out_1'], 2, '(b, d)')
    checkTensor(o2, ['inputs', 'out_2'], 2, '(b, d)')
    if (!sameShape(o1.shape, o2.shape)) {
      throw new LossServerError('shape_mismatch', `inputs.out_2 has shape ${formatShape(o2.shape)} but inputs.out_1 has shape ${formatShape(o1.shape)}; they must be equal`, ['inputs', 'out_2', 'shape'])
    }
    checkBatch(o1.shape[0], ['inputs', 'out_1'])
    void config
    void options
  }
}
