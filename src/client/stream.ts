// LossStream: many evaluations over one WebSocket (API.md "WebSocket stream"). Each request
// gets an integer id; answers come back in completion order and settle their own promise.
// At most `maxInFlight` frames are on the wire at once (the server evaluates at most
// --max-in-flight-per-connection, default 16, and stops reading beyond that); further
// requests wait here, unencoded, so a burst does not hold every body in memory twice.
import WebSocket from 'ws'
import { ERROR_STATUS, type RequestPath } from '../errors.ts'
import type { WireDtype } from '../tensor.ts'
import { decode, encode } from '../wire/msgpack.ts'
import { evaluationBody, lossResult } from './body.ts'
import { LossClientError } from './errors.ts'
import type { Exchange, KindName, LossRequest, LossResult, TaskLossRequest } from './types.ts'

export interface StreamOptions {
  /** frames on the wire at once (default 16) */
  maxInFlight?: number
  apiKey?: string
  /** wire dtype of host tensors that name none (default float32) */
  dtype?: WireDtype
  /** largest answer frame accepted, bytes (default 1 GiB) */
  maxPayload?: number
  onExchange?: (e: Exchange) => void
}

interface Pending {
  frame: () => Record<string, unknown>
  resolve: (r: LossResult) => void
  reject: (e: unknown) => void
  sentAt: number
  encodeMs: number
  requestBytes: number
  what: string
}

export class LossStream {
  readonly maxInFlight: number
  private readonly ws: WebSocket
  private readonly opts: StreamOptions
  private readonly inFlight = new Map<number, Pending>()
  private readonly waiting: Pending[] = []
  private nextId = 1
  private closedError: LossClientError | undefined
  private readonly closed: Promise<void>

  private constructor (ws: WebSocket, opts: StreamOptions) {
    this.ws = ws
    this.opts = opts
    this.maxInFlight = Math.max(1, opts.maxInFlight ?? 16)
    ws.on('message', (data: Buffer) => this.onAnswer(data))
    this.closed = new Promise(resolve => ws.once('close', (code, reason) => {
      this.fail(new LossClientError(0, 'connection_closed', `stream closed (${code}${reason.length > 0 ? ' ' + reason.toString() : ''}) with the request unanswered`))
      resolve()
    }))
    ws.on('error', err => this.fail(new LossClientError(0, 'connection_failed', `stream: ${err.message}`, { cause: err })))
  }

  /** Opens `${baseUrl}/v1/stream` (http -> ws, https -> wss). */
  static async open (baseUrl: string, opts: StreamOptions = {}): Promise<LossStream> {
    const url = baseUrl.replace(/^http/, 'ws').replace(/\/+$/, '') + '/v1/stream'
    const ws = new WebSocket(url, {
      perMessageDeflate: false, // float bytes do not compress; deflate would only cost CPU
      maxPayload: opts.maxPayload ?? 1024 ** 3,
      ...(opts.apiKey !== undefined ? { headers: { authorization: `Bearer ${opts.apiKey}` } } : {})
    })
    await new Promise<void>((resolve, reject) => {
      ws.once('open', resolve)
      ws.once('error', err => reject(new LossClientError(0, 'connection_failed', `stream ${url}: ${err.message}`, { cause: err })))
      ws.once('unexpected-response', (_req, res) => reject(new LossClientError(res.statusCode ?? 0, 'connection_failed', `stream ${url}: HTTP ${res.statusCode ?? '?'} instead of a WebSocket`)))
    })
    return new LossStream(ws, opts)
  }

  /** One stateless evaluation (POST /v1/loss/{kind} as a frame). */
  loss<K extends KindName> (kind: K, req: LossRequest<K>): Promise<LossResult> {
    return this.enqueue(kind, () => ({ kind, ...evaluationBody(req, 'msgpack', this.opts.dtype) }))
  }

  /** An evaluation with a task instance's parameters (a `task` frame). */
  taskLoss (task: string, req: TaskLossRequest): Promise<LossResult> {
    return this.enqueue(`task ${task}`, () => ({ task, ...evaluationBody(req, 'msgpack', this.opts.dtype) }))
  }

  /** Requests sent and not yet answered, and requests waiting for a slot. */
  get pending (): { inFlight: number, waiting: number } {
    return { inFlight: this.inFlight.size, waiting: this.waiting.length }
  }

  /** Waits for the requests already made, then closes (1000). */
  async close (): Promise<void> {
    while ((this.inFlight.size > 0 || this.waiting.length > 0) && this.closedError === undefined) {
      await Promise.race([this.closed, new Promise(resolve => setTimeout(resolve, 5))])
    }
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.close(1000)
    await this.closed
  }

  /** Closes at once; unanswered requests reject with connection_closed. */
  async terminate (): Promise<void> {
    this.ws.terminate()
    await this.closed
  }

  private enqueue (what: string, frame: () => Record<string, unknown>): Promise<LossResult> {
    if (this.closedError) return Promise.reject(this.closedError)
    return new Promise((resolve, reject) => {
      this.waiting.push({ frame, resolve, reject, sentAt: 0, encodeMs: 0, requestBytes: 0, what })
      this.pump()
    })
  }

  private pump (): void {
    while (this.inFlight.size < this.maxInFlight && this.waiting.length > 0 && this.closedError === undefined) {
      const p = this.waiting.shift()!
      const id = this.nextId++
      let bytes: Buffer
      const t0 = performance.now()
      try {
        bytes = encode({ id, ...p.frame() })
      } catch (err) {
        p.reject(err)
        continue
      }
      p.sentAt = t0
      p.encodeMs = performance.now() - t0
      p.requestBytes = bytes.byteLength
      this.inFlight.set(id, p)
      this.ws.send(bytes, { binary: true }, err => {
        if (err && this.inFlight.delete(id)) p.reject(new LossClientError(0, 'connection_failed', `stream: ${err.message}`, { cause: err }))
      })
    }
  }

  private onAnswer (data: Buffer): void {
    const d0 = performance.now()
    let frame: { id?: unknown, ok?: unknown, result?: unknown, error?: { code?: string, message?: string, path?: RequestPath } }
    try {
      frame = decode(data) as typeof frame
    } catch {
      return // not an answer we can attribute to a request; the server never sends one
    }
    // id null: the server could not read one of our frames; ours always carry an integer id
    const p = typeof frame.id === 'number' ? this.inFlight.get(frame.id) : undefined
    if (p === undefined) return
    this.inFlight.delete(frame.id as number)
    if (frame.ok === true) {
      try {
        const r = lossResult(frame.result)
        const t1 = performance.now()
        this.opts.onExchange?.({ method: 'WS', path: p.what, status: 200, requestBytes: p.requestBytes, responseBytes: data.byteLength, encodeMs: p.encodeMs, decodeMs: t1 - d0, totalMs: t1 - p.sentAt, attempts: 1 })
        p.resolve(r)
      } catch (err) {
        p.reject(err)
      }
    } else {
      const e = frame.error ?? {}
      const code = typeof e.code === 'string' ? e.code : 'invalid_answer'
      const status = (ERROR_STATUS as Record<string, number>)[code] ?? 0
      p.reject(new LossClientError(status, code, typeof e.message === 'string' ? e.message : code, { ...(Array.isArray(e.path) ? { path: e.path } : {}) }))
    }
    this.pump()
  }

  private fail (err: LossClientError): void {
    if (this.closedError === undefined) this.closedError = err
    for (const p of this.inFlight.values()) p.reject(err)
    this.inFlight.clear()
    for (const p of this.waiting.splice(0)) p.reject(err)
  }
}
