// feature-map-contrastive (Bolts `FeatureMapContrastiveTask`): config and options
// (../../../shared/spec/API.md table, ../../../shared/spec/LOSSES.md "feature-map-contrastive").
import { z } from 'zod'
import { tclip } from './amdim-nce.ts'

/** One side of a comparison: a fixed map index or 'r' (drawn at evaluation). */
export type MapSlot = number | 'r'
export type ComparisonTokens = Array<[MapSlot, MapSlot]>

/**
 * Parses Bolts' comparisons string ("00, 11", "0r"): comma-separated tokens, whitespace
 * stripped, each exactly two characters, each a digit or 'r'. "10" means (1, 0).
 * Returns the parsed pairs or a message that names the bad token.
 */
export function parseComparisons (s: string): { ok: true, tokens: ComparisonTokens } | { ok: false, message: string } {
  const tokens: ComparisonTokens = []
  const parts = s.split(',')
  for (let k = 0; k < parts.length; k++) {
    const tok = parts[k].trim()
    if (!/^[0-9r]{2}$/.test(tok)) {
      return { ok: false, message: `comparisons token ${k} '${tok}' in '${s}' must be exactly two characters, each a digit or 'r' (e.g. '00, 11')` }
    }
    const slot = (ch: string): MapSlot => (ch === 'r' ? 'r' : Number(ch))
    tokens.push([slot(tok[0]), slot(tok[1])])
  }
  return { ok: true, tokens }
}

export const featureMapContrastiveConfig = z.object({
  comparisons: z.string().default('00, 11').superRefine((s, ctx) => {
    const parsed = parseComparisons(s)
    if (!parsed.ok) ctx.addIssue({ code: 'custom', message: parsed.message })
  }).describe("comma-separated map index pairs, e.g. '00, 11'; 'r' draws an index; Bolts default '00, 11'"),
  tclip,
  bidirectional: z.boolean().default(true).describe('also compare positive[ai] against anchor[pi]; Bolts default true')
}).strict()
export type FeatureMapContrastiveConfig = z.output<typeof featureMapContrastiveConfig>

const mapIndex = z.number().int().min(0)

export const featureMapContrastiveOptions = z.object({
  pairs: z.array(z.tuple([mapIndex, mapIndex])).optional()
    .describe("resolved [ai, pi] per comparison (replaces each 'r' draw)"),
  locations: z.array(z.array(z.array(mapIndex))).optional()
    .describe('per comparison, per direction, b flat row-major indices y*w + x into the sampled map')
})
export type FeatureMapContrastiveOptions = z.output<typeof featureMapContrastiveOptions>
