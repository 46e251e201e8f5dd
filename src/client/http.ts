// One HTTP exchange with the server: global fetch (undici keeps connections alive by
// default, so requests reuse one socket), msgpack or JSON bodies, safetensors as raw bytes,
// API errors as LossClientError with the server's status, code, message, path and Retry-After.
import { decode, encode } from '../wire/msgpack.ts'
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

const MEDIA = { msgpack: 'application/msgpack', json: 'application/json' } as const
const now = (): number => performance.now()

export async function call<T> (http: HttpOptions, c: Call, decodeAnswer: (v: unknown) => T = v => v as T): Promise<T> {
  const t0 = now()
  const headers: Record<string, string> = { accept: c.bytes ? 'application/octet-stream' : MEDIA[http.form] }
  if (http.apiKey !== undefined) headers.authorization = `Bearer ${http.apiKey}`
  let payload: Uint8Array | string | undefined
  if (c.body instanceof Uint8Array) {
    payload = c.body
    headers['content-type'] = 'application/octet-stream'
  } else if (c.body !== undefined) {
    payload = http.form === 'msgpack' ? encode(c.body) : JSON.stringify(c.body)
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

async function once (http: HttpOptions, c: Call, headers: Record<string, string>, payload: Uint8Array | string | undefined): Promise<{ status: number, body: Uint8Array, type: string }> {
  let res: Response
  try {
    res = await fetch(http.baseUrl + c.path, {
      method: c.method,
      headers,
      ...(payload !== undefined ? { body: payload as BodyInit } : {}),
      ...(http.timeoutMs !== undefined ? { signal: AbortSignal.timeout(http.timeoutMs) } : {})
    })
  } catch (err) {
    throw new LossClientError(0, 'connection_failed', `${c.method} ${http.baseUrl}${c.path}: ${(err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message}`, { cause: err })
  }
  const body = new Uint8Array(await res.arrayBuffer())
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
