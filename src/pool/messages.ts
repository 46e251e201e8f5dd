// The typed messages between the pool (main thread) and a worker (thread or child process).
// Both transports carry them by structured clone (child processes with
// serialization: 'advanced'), so Float32Arrays arrive as Float32Arrays; threads also move
// the buffers named in a transfer list instead of copying them.
import type { ErrorCode, RequestPath } from '../errors.ts'
import type { BackendChoice, BackendInfo } from '../compute/backend.ts'
import type { PreparedRequest } from '../compute/evaluate.ts'
import type { EvalResult } from '../tasks/types.ts'

/** main -> worker */
export type ToWorker =
  | { type: 'init', backend: BackendChoice, worker: number }
  | { type: 'eval', job: number, request: PreparedRequest }
  | { type: 'stop' }

/** An error as it crosses the boundary: a client's mistake keeps its code; anything else is 'internal'. */
export interface WireError { code: ErrorCode, message: string, path?: RequestPath }

/** worker -> main */
export type FromWorker =
  | { type: 'ready', backend: BackendInfo, warmupMs: number, liveTensors: number }
  | { type: 'init_failed', message: string }
  | { type: 'result', job: number, result: EvalResult, computeMs: number, liveTensors: number }
  | { type: 'error', job: number, error: WireError, computeMs: number, liveTensors: number }
