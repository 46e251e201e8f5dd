// amdim-nce (Bolts `AmdimNCELoss`): config and options (../../../shared/spec/API.md table).
import { z } from 'zod'

export const tclip = z.number().positive().nullable().default(10.0)
  .describe('tanh_clip scale (> 0), or null for no clipping; Bolts default 10.0')

export const amdimNceConfig = z.object({
  tclip
}).strict()
export type AmdimNceConfig = z.output<typeof amdimNceConfig>

/** amdim-nce has no options of its own. */
export const amdimNceOptions = z.object({})
export type AmdimNceOptions = z.output<typeof amdimNceOptions>
