// One catalogue of coded errors, each with its HTTP status (../shared/spec/API.md "Errors").
// The core raises LossServerError; the server maps `code` to a status with statusOf().
export const ERROR_STATUS = {
  invalid_body: 400,
  invalid_tensor: 400,
  shape_mismatch: 400,
  non_finite: 400,
  invalid_config: 400,
  unauthorized: 401,
  forbidden: 403,
  unknown_task: 404,
  unknown_kind: 404,
  not_found: 404,
  method_not_allowed: 405,
  request_timeout: 408,
  conflict: 409,
  too_large: 413,
  unsupported_media_type: 415,
  headers_too_large: 431,
  overloaded: 429,
  internal: 500,
  not_ready: 503,
  worker_failed: 503,
  timeout: 503,
  unavailable: 503
} as const

export type ErrorCode = keyof typeof ERROR_STATUS
/** A path into the request body, e.g. ['inputs', 'anchor', 1, 'shape']. */
export type RequestPath = Array<string | number>

export function statusOf (code: ErrorCode): number {
  return ERROR_STATUS[code]
}

/** Errors a client may retry (after Retry-After seconds). */
export function isRetryable (code: ErrorCode): boolean {
  return code === 'overloaded' || code === 'not_ready' || code === 'worker_failed' || code === 'timeout' || code === 'unavailable'
}

export interface ErrorBody {
  error: { code: ErrorCode, message: string, path?: RequestPath }
}

export class LossServerError extends Error {
  readonly code: ErrorCode
  readonly path?: RequestPath
  constructor (code: ErrorCode, message: string, path?: RequestPath) {
    super(message)
    this.name = 'LossServerError'
    this.code = code
    if (path !== undefined) this.path = path
  }

  get status (): number { return statusOf(this.code) }

  toBody (): ErrorBody {
    return { error: { code: this.code, message: this.message, ...(this.path ? { path: this.path } : {}) } }
  }

  /** Plain-object form for crossing a worker boundary (structured clone drops the class). */
  toJSON (): { code: ErrorCode, message: string, path?: RequestPath } {
    return { code: this.code, message: this.message, ...(this.path ? { path: this.path } : {}) }
  }

  static fromJSON (e: { code: ErrorCode, message: string, path?: RequestPath }): LossServerError {
    return new LossServerError(e.code, e.message, e.path)
  }
}

/** Formats a path the way messages show it: inputs.anchor[1].shape */
export function formatPath (path: RequestPath): string {
  let out = ''
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : (out ? `.${p}` : p)
  return out
}
