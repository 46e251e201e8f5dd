// What a task instance is, independent of where it lives: its fixed description (kind,
// config, optimizer, owner) and the parameter layout that follows from them. Pure
// JavaScript: the main thread and the workers share it.
import type { OptimizerSpec } from '../../schemas/optimizer.ts'
import type { CpcConfig } from '../../schemas/kinds/cpc.ts'
import { adamSlots, sgdSlots } from '../tasks/optimizers/index.ts'
import { cpcParamSpecs } from '../tasks/cpc-params.ts'
import type { KindName } from '../tasks/types.ts'
import { sizeOf } from '../tensor.ts'

export interface InstanceMeta {
  id: string
  kind: KindName
  /** the kind's config, parsed, every default filled in */
  config: Record<string, unknown>
  optimizer: OptimizerSpec | null
  /** SHA-256 (hex) of the API key that created it; null when the server ran without keys */
  owner: string | null
  /** ISO 8601 */
  created_at: string
  /** the seed of the initial parameters */
  seed: number
}

export interface ParamShape { name: string, shape: number[] }

/** The instance's parameters in state_dict() order (cpc); no other kind holds parameters. */
export function paramShapes (kind: KindName, config: Record<string, unknown>): ParamShape[] {
  if (kind !== 'cpc') return []
  return cpcParamSpecs(config as unknown as CpcConfig).map(s => ({ name: s.name, shape: [...s.shape] }))
}

export function shapeMap (shapes: ParamShape[]): Record<string, number[]> {
  return Object.fromEntries(shapes.map(s => [s.name, s.shape]))
}

/**
 * The number of float32 parameters from the config alone, without listing them: cpc holds
 * the parameters of zero blocks plus num_blocks times those of one block
 * (src/tasks/cpc-params.ts). A config asking for 2^20 or 2^31 blocks is refused by the size
 * limit in a moment this way; listing its parameters first took 46 s and 2.6 GB of heap for
 * 2^20 blocks, and a larger count ran the server out of memory (found by the task-route fuzz).
 */
export function paramScalars (kind: KindName, config: Record<string, unknown>): number {
  if (kind !== 'cpc') return 0
  const c = config as unknown as CpcConfig
  const count = (blocks: number): number => cpcParamSpecs({ ...c, num_blocks: blocks }).reduce((n, s) => n + sizeOf(s.shape), 0)
  const base = count(0)
  return base + c.num_blocks * (count(1) - base)
}

/** float32 bytes of parameters plus the optimizer's per-parameter state (torch's layout). */
export function instanceBytes (kind: KindName, config: Record<string, unknown>, optimizer: OptimizerSpec | null): number {
  const slots = optimizer === null ? 0 : optimizer.name === 'adam' ? adamSlots(optimizer).length : sgdSlots(optimizer).length
  return paramScalars(kind, config) * 4 * (1 + slots)
}
