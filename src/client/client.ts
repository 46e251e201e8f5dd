// LossClient: typed calls of every route of API.md over HTTP (msgpack or JSON bodies), and
// LossStream for pipelined evaluations over the WebSocket.
import type { WireDtype } from '../tensor.ts'
import type { WireForm } from '../wire/tensor-codec.ts'
import { evaluationBody, lossResult } from './body.ts'
import { LossClientError } from './errors.ts'
import { call, type HttpOptions } from './http.ts'
import { retryPolicy, type RetryPolicy } from './retry.ts'
import { LossStream, type StreamOptions } from './stream.ts'
import type { CreateTaskRequest, Exchange, KindName, LossRequest, LossResult, TaskInfo, TaskLossRequest } from './types.ts'

export interface LossClientOptions {
  /** base URL of the server, e.g. http://127.0.0.1:8080 */
  url: string
  apiKey?: string
  /** body form (default msgpack: tensors as raw bytes; JSON spells every number out) */
  form?: WireForm
  /** wire dtype of host tensors that name none (default float32; float16 halves the bytes) */
  dtype?: WireDtype
  /** retries of 429/503 (Retry-After honoured); false: none */
  retry?: Partial<RetryPolicy> | false
  /** per attempt, milliseconds (default: none) */
  timeoutMs?: number
  /** called after each HTTP exchange (sizes and times), e.g. for benchmarks */
  onExchange?: (e: Exchange) => void
}

const seg = (id: string): string => encodeURIComponent(id)

export class LossClient {
  readonly url: string
  readonly form: WireForm
  private readonly http: HttpOptions
  private readonly retry: RetryPolicy
  private readonly opts: LossClientOptions

  constructor (opts: LossClientOptions) {
    if (typeof opts?.url !== 'string' || !/^https?:\/\//.test(opts.url)) throw new LossClientError(0, 'invalid_config', `LossClient: url must be http(s)://host:port, got ${String(opts?.url)}`)
    this.opts = opts
    this.url = opts.url.replace(/\/+$/, '')
    this.form = opts.form ?? 'msgpack'
    if (this.form !== 'msgpack' && this.form !== 'json') throw new LossClientError(0, 'invalid_config', `LossClient: form must be 'msgpack' or 'json', got ${String(this.form)}`)
    this.retry = retryPolicy(opts.retry)
    this.http = {
      baseUrl: this.url,
      form: this.form,
      ...(opts.apiKey !== undefined ? { apiKey: opts.apiKey } : {}),
      ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}),
      ...(opts.onExchange ? { onExchange: opts.onExchange } : {})
    }
  }

  /** POST /v1/loss/{kind}: loss, terms, gradients (float32 host tensors). Retried on 429/503. */
  async loss<K extends KindName> (kind: K, req: LossRequest<K>): Promise<LossResult> {
    const body = evaluationBody(req, this.form, this.opts.dtype)
    return await call(this.http, { method: 'POST', path: `/v1/loss/${seg(kind)}`, body, retry: this.retry }, lossResult)
  }

  featureMapContrastive (req: LossRequest<'feature-map-contrastive'>): Promise<LossResult> { return this.loss('feature-map-contrastive', req) }
  cpc (req: LossRequest<'cpc'>): Promise<LossResult> { return this.loss('cpc', req) }
  amdimNce (req: LossRequest<'amdim-nce'>): Promise<LossResult> { return this.loss('amdim-nce', req) }
  ntXent (req: LossRequest<'nt-xent'>): Promise<LossResult> { return this.loss('nt-xent', req) }

  // ---- task instances (API.md "Task instances") ----------------------------------------

  /** POST /v1/tasks. Not retried: a retry after a lost answer would create a second instance. */
  async createTask<K extends KindName> (req: CreateTaskRequest<K>): Promise<TaskInfo> {
    return await call(this.http, { method: 'POST', path: '/v1/tasks', body: req, retry: retryPolicy(false) })
  }

  async listTasks (): Promise<TaskInfo[]> {
    const answer = await call<unknown>(this.http, { method: 'GET', path: '/v1/tasks', retry: this.retry })
    // a bare list or { tasks: [...] }
    return (Array.isArray(answer) ? answer : (answer as { tasks?: TaskInfo[] } | undefined)?.tasks ?? []) as TaskInfo[]
  }

  async getTask (id: string): Promise<TaskInfo> {
    return await call(this.http, { method: 'GET', path: `/v1/tasks/${seg(id)}`, retry: this.retry })
  }

  async deleteTask (id: string): Promise<void> {
    await call(this.http, { method: 'DELETE', path: `/v1/tasks/${seg(id)}`, retry: this.retry })
  }

  /**
   * POST /v1/tasks/{id}/loss. A step that may update the parameters (options.update not
   * false) is not idempotent, so it is retried only with `{ retry: true }` (a 429 is refused
   * before anything ran; a 503 worker_failed or timeout may have stepped).
   */
  async taskLoss (id: string, req: TaskLossRequest, opts: { retry?: boolean } = {}): Promise<LossResult> {
    const idempotent = req.options?.update === false
    const retry = (opts.retry ?? idempotent) ? this.retry : retryPolicy(false)
    const body = evaluationBody(req, this.form, this.opts.dtype)
    return await call(this.http, { method: 'POST', path: `/v1/tasks/${seg(id)}/loss`, body, retry }, lossResult)
  }

  /** GET /v1/tasks/{id}/state: parameters (and optimizer state) as safetensors bytes. */
  async exportState (id: string, opts: { optimizer?: boolean } = {}): Promise<Uint8Array> {
    // ?optimizer=true adds the optimizer state (moments, step) to the parameters (docs/task-instances.md)
    const query = opts.optimizer === true ? '?optimizer=true' : ''
    return await call(this.http, { method: 'GET', path: `/v1/tasks/${seg(id)}/state${query}`, bytes: true, retry: this.retry })
  }

  /** PUT /v1/tasks/{id}/state with safetensors bytes; answers the instance. */
  async importState (id: string, safetensors: Uint8Array): Promise<TaskInfo | undefined> {
    return await call(this.http, { method: 'PUT', path: `/v1/tasks/${seg(id)}/state`, body: safetensors, retry: this.retry })
  }

  // ---- health and the stream ------------------------------------------------------------

  /** GET /health/ready: true when the workers are up and warm. */
  async ready (): Promise<boolean> {
    try {
      await call(this.http, { method: 'GET', path: '/health/ready', retry: retryPolicy(false) })
      return true
    } catch (err) {
      if (err instanceof LossClientError) return false
      throw err
    }
  }

  /** Opens a LossStream on GET /v1/stream with this client's key and dtype. */
  async stream (opts: Omit<StreamOptions, 'apiKey'> = {}): Promise<LossStream> {
    return await LossStream.open(this.url, {
      ...(this.opts.apiKey !== undefined ? { apiKey: this.opts.apiKey } : {}),
      ...(this.opts.dtype !== undefined ? { dtype: this.opts.dtype } : {}),
      ...opts
    })
  }
}
