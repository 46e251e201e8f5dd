// The one error a client call throws (API.md "Errors"): the server's { code, message, path }
// with the HTTP status it came with. Transport failures (refused connection, a socket closed
// with requests in flight, a malformed answer) get status 0 and a client-side code, so a
// caller has exactly one error type to catch.
import type { RequestPath } from '../errors.ts'

export class LossClientError extends Error {
  readonly status: number
  readonly code: string
  readonly path?: RequestPath
  /** seconds the server asked to wait (Retry-After), when it said */
  readonly retryAfter?: number

  constructor (status: number, code: string, message: string, opts: { path?: RequestPath, retryAfter?: number, cause?: unknown } = {}) {
    super(message, opts.cause !== undefined ? { cause: opts.cause } : undefined)
    this.name = 'LossClientError'
    this.status = status
    this.code = code
    if (opts.path !== undefined) this.path = opts.path
    if (opts.retryAfter !== undefined) this.retryAfter = opts.retryAfter
  }
}

/** An API error body `{ error: { code, message, path? } }` as a LossClientError, or undefined. */
export function fromErrorBody (status: number, body: unknown, retryAfter?: number): LossClientError | undefined {
  const e = (body as { error?: unknown } | null)?.error as { code?: unknown, message?: unknown, path?: unknown } | undefined
  if (e === null || typeof e !== 'object' || typeof e.code !== 'string') return undefined
  const path = Array.isArray(e.path) ? e.path as RequestPath : undefined
  return new LossClientError(status, e.code, typeof e.message === 'string' ? e.message : e.code, {
    ...(path ? { path } : {}),
    ...(retryAfter !== undefined ? { retryAfter } : {})
  })
}
