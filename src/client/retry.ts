// Retries of 429/503 answers (API.md "Errors": overloaded, not_ready, worker_failed, timeout
// come with Retry-After). The wait is the server's Retry-After when it gives one, else a
// capped exponential backoff with full jitter (AWS Architecture Blog, "Exponential Backoff
// and Jitter", 2015), so many clients refused at once do not come back at once.
import { LossClientError } from './errors.ts'

export interface RetryPolicy {
  /** retries after the first attempt (0: none) */
  retries: number
  /** first backoff, milliseconds; doubles each retry */
  baseMs: number
  /** no single wait is longer than this, Retry-After included */
  maxMs: number
  /** statuses that are retried */
  statuses: number[]
}

export const DEFAULT_RETRY: Readonly<RetryPolicy> = Object.freeze({ retries: 3, baseMs: 100, maxMs: 10_000, statuses: [429, 503] })

export function retryPolicy (p: Partial<RetryPolicy> | false | undefined): RetryPolicy {
  if (p === false) return { ...DEFAULT_RETRY, retries: 0 }
  return { ...DEFAULT_RETRY, ...p }
}

/** Retry-After as seconds: delta-seconds or an HTTP date (RFC 9110 §10.2.3). */
export function parseRetryAfter (value: string | null | undefined, now = Date.now()): number | undefined {
  if (value === null || value === undefined || value.trim() === '') return undefined
  const s = value.trim()
  if (/^\d+$/.test(s)) return Number(s)
  const at = Date.parse(s)
  return Number.isNaN(at) ? undefined : Math.max(0, (at - now) / 1000)
}

/** Milliseconds to wait before retry number `attempt` (0-based). */
export function backoffMs (policy: RetryPolicy, attempt: number, retryAfter?: number, random = Math.random): number {
  if (retryAfter !== undefined) return Math.min(policy.maxMs, retryAfter * 1000)
  return Math.min(policy.maxMs, policy.baseMs * 2 ** attempt) * random()
}

/** Runs `call`, retrying LossClientErrors whose status the policy lists. */
export async function withRetries<T> (policy: RetryPolicy, call: () => Promise<T>, sleep = defaultSleep): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await call()
    } catch (err) {
      if (!(err instanceof LossClientError) || attempt >= policy.retries || !policy.statuses.includes(err.status)) throw err
      await sleep(backoffMs(policy, attempt, err.retryAfter))
    }
  }
}

async function defaultSleep (ms: number): Promise<void> {
  await new Promise(resolve => setTimeout(resolve, ms))
}
