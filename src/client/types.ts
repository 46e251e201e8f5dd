// Request and answer types of the client, from the same zod schemas the server validates
// with (schemas/*): configs and options as their schemas' inputs, answers as
// schemas/response.ts with tensors decoded to float32 host memory.
import type { z } from 'zod'
import type { KIND_NAMES } from '../../schemas/request.ts'
import type { EvaluationResponse } from '../../schemas/response.ts'
import type { CommonOptionsInput } from '../../schemas/options.ts'
import type { OptimizerSpecInput } from '../../schemas/optimizer.ts'
import type { featureMapContrastiveConfig, featureMapContrastiveOptions } from '../../schemas/kinds/feature-map-contrastive.ts'
import type { cpcConfig } from '../../schemas/kinds/cpc.ts'
import type { amdimNceConfig } from '../../schemas/kinds/amdim-nce.ts'
import type { ntXentConfig, ntXentOptions } from '../../schemas/kinds/nt-xent.ts'
import type { WireDtype } from '../tensor.ts'
import type { ClientTensor, ClientTensorTree, TensorLike, TensorTreeLike } from './tensors.ts'

export type KindName = typeof KIND_NAMES[number]

export interface KindConfigs {
  'feature-map-contrastive': z.input<typeof featureMapContrastiveConfig>
  'cpc': z.input<typeof cpcConfig>
  'amdim-nce': z.input<typeof amdimNceConfig>
  'nt-xent': z.input<typeof ntXentConfig>
}

export interface KindOptions {
  'feature-map-contrastive': Partial<z.input<typeof featureMapContrastiveOptions>>
  'cpc': Record<never, never>
  'amdim-nce': Record<never, never>
  'nt-xent': Partial<z.input<typeof ntXentOptions>>
}

/** One evaluation (API.md "Request body of an evaluation"); tensors as host memory or wire tensors. */
export interface LossRequest<K extends KindName = KindName> {
  config?: KindConfigs[K]
  inputs: TensorTreeLike
  params?: Record<string, TensorLike>
  options?: CommonOptionsInput & KindOptions[K] & Record<string, unknown>
  /** wire dtype of host (Float32Array) tensors that name none: float32 (default), float16, bfloat16, float64 */
  dtype?: WireDtype
}

/** An answer (schemas/response.ts) with gradients as float32 host tensors. */
export type LossResult = Omit<EvaluationResponse, 'grads' | 'param_grads'> & {
  grads?: ClientTensorTree
  param_grads?: Record<string, ClientTensor>
}

/** API.md "Task instances": POST /v1/tasks. */
export interface CreateTaskRequest<K extends KindName = KindName> {
  kind: K
  config?: KindConfigs[K]
  seed?: number
  optimizer?: OptimizerSpecInput
}

export interface TaskInfo {
  id: string
  kind: KindName
  config: Record<string, unknown>
  step: number
  params: Array<{ name: string, shape: number[] }>
  optimizer: Record<string, unknown> | null
  [extra: string]: unknown
}

/** POST /v1/tasks/{id}/loss: inputs and options (options.update steps the optimizer). */
export type TaskLossRequest = Omit<LossRequest, 'config' | 'params'>

/** What one HTTP exchange or stream answer cost (for benchmarks and logs). */
export interface Exchange {
  method: string
  path: string
  status: number
  requestBytes: number
  responseBytes: number
  /** body encoding in the client, ms */
  encodeMs: number
  /** answer decoding in the client (msgpack or JSON, then tensors), ms */
  decodeMs: number
  /** first byte sent to answer decoded, ms, including retries */
  totalMs: number
  attempts: number
}
