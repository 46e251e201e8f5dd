// The main-thread side of the workers: a bounded queue, one job per worker at a time,
// per-request deadlines, cancellation, replacement of crashed or hung workers, and a
// graceful close. Computation never runs on the event loop.
import { EventEmitter } from 'node:events'
import { performance } from 'node:perf_hooks'
import { LossServerError } from '../errors.ts'
import type { BackendInfo } from '../compute/backend.ts'
import type { PreparedRequest } from '../compute/evaluate.ts'
import type { EvalResult } from '../tasks/types.ts'
import type { FromWorker, StoreSettings, TaskOp, TaskReply } from './messages.ts'
import { BoundedQueue } from './queue.ts'
import { transferList } from './transfer.ts'
import { WorkerHandle } from './worker-handle.ts'
import type { Placement } from './placement.ts'

export interface PoolOptions {
  placement: Placement
  /** jobs waiting for a worker; one more is refused with 'overloaded' */
  queueSize: number
  /** default deadline of a job, queue wait plus compute */
  timeoutMs: number
  /** delay before replacing a worker that failed to start (doubles, at most 30 s) */
  restartDelayMs?: number
  /** task instances: where workers keep checkpoints; without it, task ops fail 'unavailable' */
  store?: StoreSettings
}

export interface RunOptions {
  /** the client went away: drop the job if it still waits */
  signal?: AbortSignal
  timeoutMs?: number
  /** buffers that belong to this request alone (a request body its tensors view): moved once */
  owned?: ReadonlySet<ArrayBufferLike>
}

export interface RunMeta { backend: string, worker: number, queue_ms: number, compute_ms: number }
export interface RunOutcome { result: EvalResult, meta: RunMeta }
export interface TaskOutcome { reply: TaskReply, meta: RunMeta }

/** What the pool emits for metrics: 'done' per finished job, 'restart' per replaced worker. */
export interface JobRecord { kind: string, outcome: 'ok' | string, queueMs: number, computeMs: number, totalMs: number }

/** replacing: killed on purpose (timeout, terminateWorker), its successor is on the way */
type SlotState = 'starting' | 'idle' | 'busy' | 'replacing' | 'stopped'

/** What a job asks of a worker: a stateless evaluation, or an op on a task instance. */
type Payload = { type: 'eval', request: PreparedRequest } | { type: 'task', op: TaskOp }

interface Job {
  id: number
  payload: Payload
  /** the kind, for metrics */
  kind: string
  /** only this worker may run it (a task instance's home); FIFO among the jobs it may run */
  affinity?: number
  owned?: ReadonlySet<ArrayBufferLike>
  resolve: (o: RunOutcome | TaskOutcome) => void
  reject: (e: LossServerError) => void
  enqueuedAt: number
  startedAt?: number
  slot?: Slot
  timer?: NodeJS.Timeout
  onAbort?: () => void
  signal?: AbortSignal
  settled: boolean
}

interface Slot {
  index: number
  handle: WorkerHandle
  state: SlotState
  job?: Job
  backend?: BackendInfo
  liveTensors: number
  failures: number
}

export class WorkerPool extends EventEmitter {
  private readonly slots: Slot[] = []
  private readonly queue: BoundedQueue<Job>
  private closing = false
  private closed?: Promise<void>
  private firstReady: Promise<void>
  private settleFirstReady!: { resolve: () => void, reject: (e: Error) => void }
  private everReady = false
  private jobSeq = 0
  private store?: StoreSettings

  constructor (readonly options: PoolOptions) {
    super()
    this.queue = new BoundedQueue<Job>(options.queueSize)
    if (options.store) this.store = options.store
    this.firstReady = new Promise((resolve, reject) => { this.settleFirstReady = { resolve, reject } })
    this.firstReady.catch(() => {}) // observed through ready()
    for (let i = 0; i < options.placement.workers; i++) this.slots.push(this.spawn(i, 0))
  }

  /** Resolves when every worker has loaded its backend and warmed up; rejects if one cannot. */
  ready (): Promise<void> { return this.firstReady }

  /** Every worker warm (a replaced worker makes this false until its successor is warm). */
  isReady (): boolean {
    return !this.closing && this.slots.every(s => s.state === 'idle' || s.state === 'busy')
  }

  get size (): number { return this.slots.length }
  get queueDepth (): number { return this.queue.length }
  get busyWorkers (): number { return this.slots.filter(s => s.state === 'busy').length }

  workers (): Array<{ index: number, state: SlotState, backend?: string, liveTensors: number }> {
    return this.slots.map(s => ({ index: s.index, state: s.state, backend: s.backend?.backend, liveTensors: s.liveTensors }))
  }

  /** The backend the workers run (from the first warm worker). */
  backend (): BackendInfo | undefined {
    return this.slots.find(s => s.backend)?.backend
  }

  /**
   * Evaluates a prepared request in a worker. Rejects with LossServerError: the request's own
   * errors (400...), 'overloaded' (queue full), 'not_ready' (closing), 'timeout',
   * 'worker_failed' (the worker died with the job).
   */
  run (request: PreparedRequest, opts: RunOptions = {}): Promise<RunOutcome> {
    return this.submit({ type: 'eval', request }, request.kind, undefined, opts) as Promise<RunOutcome>
  }

  /**
   * Runs an op on a task instance in worker `worker` (its home, where its parameters live).
   * Jobs for one worker start in arrival order, so the calls on one instance are serialised;
   * the queue limit, deadlines and cancellation are those of run().
   */
  runTask (op: TaskOp, worker: number, opts: RunOptions = {}): Promise<TaskOutcome> {
    if (!Number.isInteger(worker) || worker < 0 || worker >= this.slots.length) return Promise.reject(new LossServerError('internal', `no worker ${worker}`))
    const kind = op.op === 'create' ? op.meta.kind : op.kind
    return this.submit({ type: 'task', op }, kind, worker, opts) as Promise<TaskOutcome>
  }

  private submit (payload: Payload, kind: string, affinity: number | undefined, opts: RunOptions): Promise<RunOutcome | TaskOutcome> {
    if (this.closing) return Promise.reject(new LossServerError('not_ready', 'the server is shutting down'))
    if (opts.signal?.aborted) return Promise.reject(new LossServerError('unavailable', 'the client went away'))
    const idle = affinity === undefined ? this.slots.find(s => s.state === 'idle') : (this.slots[affinity].state === 'idle' ? this.slots[affinity] : undefined)
    if (!idle && this.queue.full) {
      return Promise.reject(new LossServerError('overloaded', `${affinity === undefined ? `all ${this.slots.length} workers are` : `worker ${affinity} (this task instance's home) is`} busy and ${this.queue.length} requests wait (queue size ${this.queue.capacity}); retry later`))
    }
    return new Promise<RunOutcome | TaskOutcome>((resolve, reject) => {
      const job: Job = { id: ++this.jobSeq, payload, kind, resolve, reject, enqueuedAt: performance.now(), settled: false, ...(affinity !== undefined ? { affinity } : {}), ...(opts.owned ? { owned: opts.owned } : {}) }
      const timeoutMs = opts.timeoutMs ?? this.options.timeoutMs
      job.timer = setTimeout(() => this.onTimeout(job, timeoutMs), timeoutMs)
      if (opts.signal) {
        job.signal = opts.signal
        job.onAbort = () => this.onAbort(job)
        opts.signal.addEventListener('abort', job.onAbort, { once: true })
      }
      if (idle) this.start(idle, job)
      else this.queue.push(job)
    })
  }

  /**
   * Tells every worker (and every later replacement) where task instances are kept. The
   * server's store calls it once before its first task op; a pool built without it refuses
   * task ops with 'unavailable'.
   */
  configureStore (store: StoreSettings): void {
    this.store = store
    for (const s of this.slots) s.handle.send({ type: 'configure', store })
  }

  /** Kills worker `index` now, as a crash would (operations and tests); it is replaced. */
  terminateWorker (index: number): void {
    this.replace(this.slots[index])
  }

  private replace (slot: Slot | undefined): void {
    if (!slot || !slot.handle.alive) return
    if (slot.state !== 'stopped') slot.state = 'replacing'
    slot.handle.kill()
  }

  /** Stops taking jobs, lets queued and running ones finish, then stops the workers. */
  close (): Promise<void> {
    if (this.closed) return this.closed
    this.closing = true
    this.closed = (async () => {
      while (this.queue.length > 0 || this.slots.some(s => s.job)) await new Promise(resolve => this.once('idle', resolve))
      for (const s of this.slots) {
        s.state = 'stopped'
        s.handle.send({ type: 'stop' })
      }
      const stopped = Promise.all(this.slots.map(s => s.handle.exitedPromise()))
      const force = setTimeout(() => this.slots.forEach(s => s.handle.kill()), 5000)
      await stopped
      clearTimeout(force)
      this.settleFirstReady.reject(new Error('the pool was closed before it was ready'))
    })()
    return this.closed
  }

  private spawn (index: number, failures: number): Slot {
    const { placement } = this.options
    const env = placement.envOf?.(index)
    const handle = new WorkerHandle({ transport: placement.transport, ...(env ? { env } : {}) })
    const slot: Slot = { index, handle, state: 'starting', liveTensors: 0, failures }
    handle.on('message', (m: FromWorker) => this.onMessage(slot, m))
    handle.on('error', () => {}) // an uncaught error in the worker; its 'exit' follows and is handled there
    handle.on('exit', () => this.onExit(slot))
    handle.send({ type: 'init', backend: placement.backend, worker: index, ...(this.store ? { store: this.store } : {}) })
    return slot
  }

  private onMessage (slot: Slot, m: FromWorker): void {
    if (slot.state === 'replacing' || slot.state === 'stopped') return // late words of a worker on its way out
    if (m.type === 'ready') {
      slot.backend = m.backend
      slot.liveTensors = m.liveTensors
      slot.failures = 0
      slot.state = 'idle'
      if (!this.everReady && this.slots.length === this.options.placement.workers && this.slots.every(s => s.state === 'idle')) {
        this.everReady = true
        this.settleFirstReady.resolve()
      }
      this.emit('ready', slot.index)
      this.dispatch(slot)
    } else if (m.type === 'init_failed') {
      if (!this.everReady) this.settleFirstReady.reject(new Error(`worker ${slot.index}: ${m.message}`))
      this.emit('init_failed', slot.index, m.message)
      slot.state = 'stopped'
      slot.handle.kill()
    } else {
      const job = slot.job
      if (!job || job.id !== m.job) return // an answer for work that was already taken back
      slot.liveTensors = m.liveTensors
      slot.job = undefined
      slot.state = 'idle'
      if (!job.settled) {
        if (m.type === 'result' || m.type === 'task_result') {
          const meta = { backend: slot.backend?.backend ?? 'unknown', worker: slot.index, queue_ms: round(job.startedAt! - job.enqueuedAt), compute_ms: round(m.computeMs) }
          this.finish(job, 'ok', m.computeMs)
          job.resolve(m.type === 'result' ? { result: m.result, meta } : { reply: m.reply, meta })
        } else {
          this.finish(job, m.error.code, m.computeMs)
          job.reject(LossServerError.fromJSON(m.error))
        }
      }
      this.dispatch(slot)
    }
  }

  private onExit (slot: Slot): void {
    const job = slot.job
    slot.job = undefined
    const wasStopping = slot.state === 'stopped' && this.closing
    if (job && !job.settled) {
      this.finish(job, 'worker_failed', 0)
      job.reject(new LossServerError('worker_failed', `worker ${slot.index} stopped while computing this request; it is being replaced, retry`))
    }
    if (wasStopping || this.closing) {
      this.maybeIdle()
      return
    }
    // A worker that failed to start is retried with a growing delay instead of a hot loop.
    const failures = slot.state === 'starting' || slot.state === 'stopped' ? slot.failures + 1 : 0
    const delay = failures === 0 ? 0 : Math.min(30_000, (this.options.restartDelayMs ?? 1000) * 2 ** (failures - 1))
    slot.state = 'starting'
    this.emit('restart', slot.index)
    const timer = setTimeout(() => {
      if (this.closing) return
      this.slots[slot.index] = this.spawn(slot.index, failures)
    }, delay)
    timer.unref()
  }

  private start (slot: Slot, job: Job): void {
    slot.state = 'busy'
    slot.job = job
    job.slot = slot
    job.startedAt = performance.now()
    const p = job.payload
    if (p.type === 'eval') {
      const transfer = transferList([p.request.inputs, p.request.params], job.owned)
      slot.handle.send({ type: 'eval', job: job.id, request: p.request }, transfer)
      return
    }
    const op = p.op
    let transfer: ArrayBuffer[] = []
    if (op.op === 'loss') transfer = transferList([op.request.inputs], job.owned)
    // imported state: arrays the caller made for this op alone
    else if (op.op === 'import') transfer = [...new Set([...Object.values(op.state.params), ...Object.values(op.state.optimizer ?? {})].map(a => a.buffer as ArrayBuffer))]
    slot.handle.send({ type: 'task', job: job.id, op }, transfer)
  }

  private dispatch (slot: Slot): void {
    if (slot.state !== 'idle') return
    const next = this.queue.takeFirst(j => j.affinity === undefined || j.affinity === slot.index)
    if (next) this.start(slot, next)
    else this.maybeIdle()
  }

  private maybeIdle (): void {
    if (this.queue.length === 0 && !this.slots.some(s => s.job)) this.emit('idle')
  }

  private onTimeout (job: Job, timeoutMs: number): void {
    if (job.settled) return
    const running = job.slot
    this.queue.remove(job)
    this.finish(job, 'timeout', 0)
    job.reject(new LossServerError('timeout', `the request did not finish within the ${timeoutMs / 1000} s limit; its work was abandoned`))
    // The work cannot be interrupted inside the worker: replace the worker instead of
    // letting an abandoned (or hung) evaluation hold it.
    if (running && running.job === job) this.replace(running)
    this.maybeIdle()
  }

  private onAbort (job: Job): void {
    if (job.settled || !this.queue.remove(job)) return // running work finishes; its answer is dropped
    this.finish(job, 'cancelled', 0)
    job.reject(new LossServerError('unavailable', 'the client went away'))
    this.maybeIdle()
  }

  private finish (job: Job, outcome: string, computeMs: number): void {
    job.settled = true
    clearTimeout(job.timer)
    if (job.signal && job.onAbort) job.signal.removeEventListener('abort', job.onAbort)
    const now = performance.now()
    const queueMs = (job.startedAt ?? now) - job.enqueuedAt
    const record: JobRecord = { kind: job.kind, outcome, queueMs, computeMs, totalMs: now - job.enqueuedAt }
    this.emit('done', record)
  }
}

function round (ms: number): number {
  return Math.round(ms * 1000) / 1000
}
