// The contract between the compute core and everything that calls it.
// A kind is pure math: `check` runs on the main thread without tfjs (cheap, so a bad
// request never takes a worker slot); `evaluate` runs in a worker on the active backend.
import type { z } from 'zod'
import { KIND_NAMES } from '../../schemas/request.ts'
import type { HostTensor } from '../tensor.ts'

// The wire names are part of the contract (schemas/); the core uses the same list.
export { KIND_NAMES }
export type KindName = typeof KIND_NAMES[number]

/** Inputs as on the wire after decoding: a tensor or a list of tensors per name. */
export type Inputs = Record<string, HostTensor | HostTensor[]>
/** cpc parameters by PyTorch state_dict() key. */
export type Params = Record<string, HostTensor>

/** Options common to every kind (API.md "Request body of an evaluation"). */
export interface CommonOptions {
  /** return d(loss)/d(inputs); default true */
  gradients: boolean
  /** cpc: return d(loss)/d(params); default false */
  param_grads: boolean
  /** uint32; makes random choices reproducible. Absent: a random seed is drawn. */
  seed?: number
}

export interface Sampled {
  pairs: Array<[number, number]>
  /** per comparison, per direction (1 or 2 entries), b flat indices y*w + x */
  locations: number[][][]
  /** the seed used for the draws (given or drawn) */
  seed: number
}

export interface EvalResult {
  loss: number
  terms: Record<string, unknown>
  /** same structure as the inputs; absent when options.gradients is false */
  grads?: Record<string, HostTensor | HostTensor[]>
  /** cpc with options.param_grads */
  paramGrads?: Params
  /** feature-map-contrastive: the random choices that were used */
  sampled?: Sampled
}

/**
 * What the main thread needs of a kind: its schemas, inputs and checks, without tfjs
 * (src/tasks/registry.ts). The worker adds `evaluate` (src/tasks/compute-registry.ts).
 */
export type KindSpec<Config = any, Options extends CommonOptions = any> = Omit<TaskKind<Config, Options>, 'evaluate'>

export interface TaskKind<Config = any, Options extends CommonOptions = any> {
  readonly name: KindName
  /** zod schema of `config`, Bolts defaults applied (schemas/kinds/<kind>.ts) */
  readonly configSchema: z.ZodType<Config>
  /** zod schema of this kind's own options (merged with schemas/options.ts commonOptions) */
  readonly optionsSchema: z.ZodObject<any>
  /** Tensor inputs this kind takes and whether each is a list (feature maps) or one tensor. */
  readonly inputs: Readonly<Record<string, 'tensor' | 'list'>>
  /** Whether the kind takes `params` (cpc). */
  readonly hasParams: boolean
  /**
   * Semantic checks after the zod schemas parsed config and options: shapes, channel counts,
   * index ranges, parameter names and shapes. Throws LossServerError with a path into the
   * request ('inputs', 'anchor', 1, 'shape'). Never touches tfjs.
   */
  check (config: Config, inputs: Inputs, params: Params | undefined, options: Options): void
  /**
   * One pass: loss, terms, gradients (and parameter gradients) on the active tfjs backend,
   * inside tidy scopes: the live tensor count after equals the count before.
   */
  evaluate (config: Config, inputs: Inputs, params: Params | undefined, options: Options): EvalResult
}
