// nt-xent (SimCLR; Bolts `nt_xent_loss`): config and options (../../../shared/spec/API.md table).
import { z } from 'zod'

export const ntXentConfig = z.object({
  temperature: z.number().positive().default(0.5).describe('softmax temperature (> 0); Bolts default 0.5')
}).strict()
export type NtXentConfig = z.output<typeof ntXentConfig>

export const ntXentOptions = z.object({
  normalize: z.boolean().default(false).describe('L2-normalise the rows of out_1 and out_2 first (Bolts does not)')
})
export type NtXentOptions = z.output<typeof ntXentOptions>
