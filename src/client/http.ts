// One HTTP exchange with the server: global fetch (undici keeps connections alive by
// default, so requests reuse one socket), msgpack or JSON bodies, safetensors as raw bytes,
// API errors as LossClientError with the server's status, code, message, path and Retry-After.
import { decode, encodeParts, type EncodedParts } from '../wire/msgpack.ts'
import type { WireForm } from '../wire/tensor-codec.ts'
import { LossClientError, fromErrorBody } from './errors.ts'
import { parseRetryAfter, withRetries, type RetryPolicy } from './retry.ts'
import type { Exchange } from './types.ts'

export interface HttpOptions {
  baseUrl: string
  apiKey?: string
  form: WireForm
  timeoutMs?: number
  onExchange?: (e: Exchange) => void
}

export interface Call {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE'
  path: string
  /** a value to encode in the client's form, or raw bytes (sent as application/octet-stream) */
  body?: unknown
  /** the answer is raw bytes (safetensors) */
  bytes?: boolean
  retry: RetryPolicy
}

/** A request body: raw bytes, JSON text, or msgpack parts (sent in order, Content-Length set). */
type Payload = Uint8Array | string | EncodedParts

function bodyInit (payload: Payload, headers: Record<string, string>): RequestInit {
  if (typeof payload === 'string' || payload instanceof Uint8Array) return { body: payload as BodyInit }
  if (payload.parts.length === 1) return { body: payload.parts[0] as BodyInit }
  // undici sends an async iterable with the Content-Length given (not chunked); a fresh
  // iterator per attempt, so a retry sends the same parts again
  const { parts } = payload
  async function * chunks (): AsyncGenerator<Uint8Array> { for (const p of parts) yield p }
  headers['content-length'] = String(payload.byteLength)
  return { body: chunks() as unknown as BodyInit, duplex: 'half' } as RequestInit
}

/**
 * The answer body in ONE buffer at offset 0 of its own memory: pre-sized from Content-Length
 * when there is one (each chunk copied into place once, instead of arrayBuffer()'s list of
 * chunks joined at the end), so float32 gradients that the server aligned are read as views.
 */
async function readAll (res: Response): Promise<Uint8Array> {
  const declared = Number(res.headers.get('content-length') ?? NaN)
  if (!res.body || !Number.isSafeInteger(declared) || declared < 0) return new Uint8Array(await res.arrayBuffer())
  const out = new Uint8Array(Buffer.allocUnsafeSlow(declared).buffer, 0, declared)
  let at = 0
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    if (at + chunk.byteLength > declared) throw new Error(`the answer is longer than its Content-Length of ${declared} bytes`)
    out.set(chunk, at)
    at += chunk.byteLength
  }
  if (at !== declared) throw new Error(`the answer ended after ${at} bytes; its Content-Length said ${declared}`)
  return out
}

const MEDIA = { msgpack: 'application/msgpack', json: 'application/json' } as const
const now = (): number => performance.now()

export async function call<T> (http: HttpOptions, c: Call, decodeAnswer: (v: unknown) => T = v => v as T): Promise<T> {
  const t0 = now()
  const headers: Record<string, string> = { accept: c.bytes ? 'application/octet-stream' : MEDIA[http.form] }
  if (http.apiKey !== undefined) headers.authorization = `Bearer ${http.apiKey}`
  let payload: Payload | undefined
  if (c.body instanceof Uint8Array) {
    payload = c.body
    headers['content-type'] = 'application/octet-stream'
  } else if (c.body !== undefined) {
    // msgpack: the parts of the body (tensor bytes are views of the caller's arrays, each
    // 4-byte aligned in the body so the server computes on them in place), streamed with an
    // exact Content-Length; never copied into one body-sized buffer
    payload = http.form === 'msgpack' ? encodeParts(c.body) : JSON.stringify(c.body)
    headers['content-type'] = MEDIA[http.form]
  }
  const encodeMs = now() - t0
  const requestBytes = payload === undefined ? 0 : typeof payload === 'string' ? Buffer.byteLength(payload) : payload.byteLength
  let attempts = 0
  const { status, body, type } = await withRetries(c.retry, async () => {
    attempts++
    return await once(http, c, headers, payload)
  })
  const d0 = now()
  const answer = status === 204 || body.byteLength === 0 ? undefined : c.bytes ? body : parseBody(body, type.includes('msgpack') ? 'msgpack' : 'json', status)
  const result = decodeAnswer(answer)
  const t1 = now()
  http.onExchange?.({ method: c.method, path: c.path, status, requestBytes, responseBytes: body.byteLength, encodeMs, decodeMs: t1 - d0, totalMs: t1 - t0, attempts })
  return result
}

async function once (http: HttpOptions, c: Call, headers: Record<string, string>, payload: Payload | undefined): Promise<{ status: number, body: Uint8Array, type: string }> {
  let res: Response
  try {
    res = await fetch(http.baseUrl + c.path, {
      method: c.method,
      headers,
      ...(payload !== undefined ? bodyInit(payload, headers) : {}),
      ...(http.timeoutMs !== undefined ? { signal: AbortSignal.timeout(http.timeoutMs) } : {})
    })
  } catch (err) {
    throw new LossClientError(0, 'connection_failed', `${c.method} ${http.baseUrl}${c.path}: ${(err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message}`, { cause: err })
  }
  let body: Uint8Array
  try {
    body = await readAll(res)
  } catch (err) {
    throw new LossClientError(0, 'connection_failed', `${c.method} ${http.baseUrl}${c.path}: reading the answer: ${(err as Error).message}`, { cause: err })
  }
  const type = res.headers.get('content-type') ?? ''
  if (res.ok) return { status: res.status, body, type }
  const retryAfter = parseRetryAfter(res.headers.get('retry-after'))
  let parsed: unknown
  try {
    parsed = type.includes('msgpack') ? decode(body) : JSON.parse(Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8'))
  } catch {
    parsed = undefined
  }
  throw fromErrorBody(res.status, parsed, retryAfter) ??
    new LossClientError(res.status, `http_${res.status}`, `${c.method} ${c.path}: HTTP ${res.status} ${res.statusText}`, { ...(retryAfter !== undefined ? { retryAfter } : {}) })
}

function parseBody (body: Uint8Array, form: WireForm, status: number): unknown {
  try {
    return form === 'msgpack' ? decode(body) : JSON.parse(Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8'))
  } catch (err) {
    throw new LossClientError(status, 'invalid_answer', `the server's ${form} answer cannot be read: ${(err as Error).message}`, { cause: err })
  }
}
