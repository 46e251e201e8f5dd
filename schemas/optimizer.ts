// A task instance's optimizer (../shared/spec/API.md "Task instances": `optimizer`).
// Names, defaults and validity checks are PyTorch's: torch.optim.Adam and torch.optim.SGD
// (https://pytorch.org/docs/stable/generated/torch.optim.Adam.html, .../torch.optim.SGD.html).
import { z } from 'zod'

// torch: "Invalid learning rate" when lr < 0; 0 is allowed (a frozen instance).
const lr = z.number().min(0).default(1e-3).describe('learning rate (>= 0); torch.optim.Adam default 1e-3')
const weightDecay = z.number().min(0).default(0).describe('L2 penalty added to the gradient (>= 0), as torch does (not AdamW)')
// torch: "Invalid beta parameter at index i" unless 0 <= beta < 1.
const beta = z.number().min(0).lt(1)

export const adamSpec = z.strictObject({
  name: z.literal('adam'),
  lr,
  betas: z.tuple([beta, beta]).default((): [number, number] => [0.9, 0.999]).describe('running-average coefficients of the gradient and its square, each in [0, 1)'),
  eps: z.number().min(0).default(1e-8).describe('added to the denominator (>= 0)'),
  weight_decay: weightDecay,
  amsgrad: z.boolean().default(false).describe('use the maximum of the second-moment averages (Reddi et al. 2018)')
})

export const sgdSpec = z.strictObject({
  name: z.literal('sgd'),
  // torch.optim.SGD defaults lr to 1e-3 since 2.2 (it was required before); the same here.
  lr: z.number().min(0).default(1e-3).describe('learning rate (>= 0); torch.optim.SGD default 1e-3'),
  momentum: z.number().min(0).default(0).describe('momentum factor (>= 0)'),
  // torch accepts any dampening; a factor 1 - dampening outside [0, 1] is never meant.
  dampening: z.number().min(0).max(1).default(0).describe('dampening of the momentum, in [0, 1]'),
  weight_decay: weightDecay,
  nesterov: z.boolean().default(false).describe('Nesterov momentum; needs momentum > 0 and dampening 0')
}).refine(s => !s.nesterov || (s.momentum > 0 && s.dampening === 0), {
  // torch: "Nesterov momentum requires a momentum and zero dampening"
  message: 'nesterov requires momentum > 0 and dampening 0',
  path: ['nesterov']
})

export const optimizerSpec = z.discriminatedUnion('name', [adamSpec, sgdSpec])

export type AdamSpec = z.output<typeof adamSpec>
export type SgdSpec = z.output<typeof sgdSpec>
export type OptimizerSpec = z.output<typeof optimizerSpec>
export type OptimizerSpecInput = z.input<typeof optimizerSpec>
export type OptimizerName = OptimizerSpec['name']
