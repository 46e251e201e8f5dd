// nt-xent: SimCLR's normalized temperature-scaled cross entropy (Chen et al. 2020, "A Simple
// Framework for Contrastive Learning of Visual Representations"), as Bolts' `nt_xent_loss`
// (../../../shared/spec/LOSSES.md "nt-xent").
//
// out = concat(out_1, out_2) (2b, d); logit = out·outᵀ / temperature;
// loss = mean_k [ logsumexp_{j≠k} logit[k, j] − p_k ], p_k = logit[k, partner(k)], partner(k) = (k + b) mod 2b.
// The positive stays in the denominator (2b − 1 terms), by Bolts' design, so each row is
// log(e^{p_k} + e^{n_k}) − p_k = softplus(n_k − p_k) with n_k the logsumexp over j ∉ {k, partner(k)}.
// **fix**: Bolts exponentiates before summing (inf/NaN for large logits) and subtracts
// e^{1/temperature} for the self term (exact only for unit rows); here self and partner are
// masked with −Infinity before the logsumexp, and softplus in float64 keeps tiny losses
// (dominant positives) at full relative precision. The pass, with its hand-written backward,
// is nt-xent-pass.ts.
import type { HostTensor } from '../tensor.ts'
import type { NtXentConfig } from '../../schemas/kinds/nt-xent.ts'
import type { EvalResult, TaskKind } from './types.ts'
import { ntXentPass } from './nt-xent-pass.ts'
import { ntXentSpec, type NtXentKindOptions } from './nt-xent-spec.ts'

export const ntXent: TaskKind<NtXentConfig, NtXentKindOptions> = {
  ...ntXentSpec,

  evaluate (config, inputs, _params, options): EvalResult {
    const o1 = inputs.out_1 as HostTensor
    const o2 = inputs.out_2 as HostTensor
    const [b, d] = o1.shape
    const r = ntXentPass(o1.data, o2.data, b, d, config.temperature, options.normalize ?? false, options.gradients !== false)
    return {
      loss: r.loss,
      terms: {},
      ...(r.grads ? { grads: { out_1: { shape: [b, d], data: r.grads[0] }, out_2: { shape: [b, d], data: r.grads[1] } } } : {})
    }
  }
}
