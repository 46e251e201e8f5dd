// The typed messages between the pool (main thread) and a worker (thread or child process).
// Both transports carry them by structured clone (child processes with
// serialization: 'advanced'), so Float32Arrays arrive as Float32Arrays; threads also move
// the buffers named in a transfer list instead of copying them.
import type { ErrorCode, RequestPath } from '../errors.ts'
import type { BackendChoice, BackendInfo } from '../compute/backend.ts'
import type { PreparedRequest } from '../compute/evaluate.ts'
import type { EvalResult, KindName } from '../tasks/types.ts'
import type { InstanceMeta } from '../store/instance.ts'
import type { InstanceState } from '../store/state-file.ts'

/** Where workers keep task instances' checkpoints (src/store/checkpoint.ts). */
export interface StoreSettings { dataDir: string, checkpointEvery: number }

/**
 * Work on a task instance, run by its home worker (src/store/held.ts). `id` passed
 * isTaskId() on the main thread; the worker checks it again before any file use.
 */
export type TaskOp =
  | { op: 'create', meta: InstanceMeta }
  | { op: 'loss', id: string, kind: KindName, request: PreparedRequest, update: boolean }
  | { op: 'export', id: string, kind: KindName, optimizer: boolean }
  /** replaces parameters; `state.optimizer` absent: the optimizer starts afresh */
  | { op: 'import', id: string, kind: KindName, state: InstanceState }
  | { op: 'delete', id: string, kind: KindName }

export type TaskReply =
  | { op: 'create', step: number }
  | { op: 'loss', result: EvalResult, step: number }
  | { op: 'export', state: InstanceState }
  | { op: 'import', step: number }
  | { op: 'delete' }

/** main -> worker */
export type ToWorker =
  | { type: 'init', backend: BackendChoice, worker: number, store?: StoreSettings }
  | { type: 'eval', job: number, request: PreparedRequest }
  | { type: 'task', job: number, op: TaskOp }
  | { type: 'configure', store: StoreSettings }
  | { type: 'stop' }

/** An error as it crosses the boundary: a client's mistake keeps its code; anything else is 'internal'. */
export interface WireError { code: ErrorCode, message: string, path?: RequestPath }

/** worker -> main */
export type FromWorker =
  | { type: 'ready', backend: BackendInfo, warmupMs: number, liveTensors: number }
  | { type: 'init_failed', message: string }
  | { type: 'result', job: number, result: EvalResult, computeMs: number, liveTensors: number }
  | { type: 'task_result', job: number, reply: TaskReply, computeMs: number, liveTensors: number }
  | { type: 'error', job: number, error: WireError, computeMs: number, liveTensors: number }
