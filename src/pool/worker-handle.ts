// One worker as the pool sees it, over either transport: a worker thread (wasm, cpu,
// tensorflow) or a forked child process (tensorflow-gpu: tfjs-node-gpu binds one device per
// process and is unreliable in threads, so each process gets its own CUDA_VISIBLE_DEVICES).
import { EventEmitter } from 'node:events'
import { fork, type ChildProcess } from 'node:child_process'
import { Worker } from 'node:worker_threads'
import { fileURLToPath } from 'node:url'
import type { FromWorker, ToWorker } from './messages.ts'

export type Transport = 'thread' | 'process'

const ENTRY = fileURLToPath(new URL('../compute/worker-entry.mjs', import.meta.url))

/**
 * The flags of `execArgv` a compute thread inherits: `node --cpu-prof --cpu-prof-dir=DIR
 * server/start.ts ...` profiles the threads too (each writes its own .cpuprofile), since
 * that is where most of a request's time goes. Valued flags pass only as `--flag=value` (a
 * value in the next argument would leave the thread a flag without its value).
 */
export function profilingFlags (execArgv: readonly string[] = process.execArgv): string[] {
  return execArgv.filter(a => /^--(cpu-prof|heap-prof)$/.test(a) || /^--(cpu-prof|heap-prof)-[a-z]+=./.test(a))
}

export interface WorkerHandleOptions {
  transport: Transport
  /** child processes only: their whole environment */
  env?: NodeJS.ProcessEnv
}

/**
 * Emits 'message' (FromWorker) and 'exit' (code, once, whatever the cause: crash, kill,
 * stop). Every handle ends with exactly one 'exit'.
 */
export class WorkerHandle extends EventEmitter {
  private thread?: Worker
  private child?: ChildProcess
  private exited = false

  constructor (readonly options: WorkerHandleOptions) {
    super()
    const onMessage = (m: unknown): void => { this.emit('message', m as FromWorker) }
    const onExit = (code: number | null): void => {
      if (this.exited) return
      this.exited = true
      this.emit('exit', code ?? -1)
    }
    if (options.transport === 'thread') {
      // Only the parent's profiling flags: the loader is registered by the entry; the other
      // flags (tap's coverage hooks, --import tsx) do not belong in a compute thread.
      this.thread = new Worker(ENTRY, { execArgv: profilingFlags(), stdout: false, stderr: false })
      this.thread.on('message', onMessage)
      this.thread.on('error', err => this.emit('error', err))
      this.thread.on('exit', onExit)
    } else {
      this.child = fork(ENTRY, [], { execArgv: [], serialization: 'advanced', env: options.env, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
      this.child.on('message', onMessage)
      this.child.on('error', err => this.emit('error', err))
      this.child.on('exit', onExit)
    }
  }

  get alive (): boolean { return !this.exited }

  send (msg: ToWorker, transfer: ArrayBuffer[] = []): void {
    if (this.exited) return
    if (this.thread) this.thread.postMessage(msg, transfer)
    else this.child!.send(msg)
  }

  /** Ends the worker now, whatever it is doing (crash recovery, hung work, tests). */
  kill (): void {
    if (this.exited) return
    if (this.thread) void this.thread.terminate()
    else this.child!.kill('SIGKILL')
  }

  /** Resolves once the worker has exited. */
  exitedPromise (): Promise<void> {
    if (this.exited) return Promise.resolve()
    return new Promise(resolve => this.once('exit', () => resolve()))
  }
}
