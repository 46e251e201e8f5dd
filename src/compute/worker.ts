// What runs inside a worker (a thread, or a child process for tensorflow-gpu): load the
// backend, warm up, then evaluate one request at a time and send results back, moving the
// result buffers instead of copying them. Loaded by worker-entry.mjs, which registers tsx.
import { parentPort } from 'node:worker_threads'
import { performance } from 'node:perf_hooks'
import * as tf from '@tensorflow/tfjs'
import { LossServerError } from '../errors.ts'
import { initBackend, liveTensors, type BackendChoice } from './backend.ts'
import { prepare } from './evaluate.ts'
import { evaluate } from './compute-request.ts'
import { getKind } from '../tasks/registry.ts'
import { transferList } from '../pool/transfer.ts'
import type { FromWorker, TaskReply, ToWorker, WireError } from '../pool/messages.ts'
import { InstanceHost } from '../store/held.ts'

interface Channel {
  send (msg: FromWorker, transfer?: ArrayBuffer[]): void
  onMessage (fn: (msg: ToWorker) => void): void
}

function channel (): Channel {
  if (parentPort) {
    const port = parentPort
    return { send: (msg, transfer) => port.postMessage(msg, transfer ?? []), onMessage: fn => port.on('message', fn) }
  }
  if (process.send) {
    // child process: structured clone over IPC ('advanced' serialization); nothing to transfer
    return { send: msg => { process.send!(msg) }, onMessage: fn => process.on('message', m => fn(m as ToWorker)) }
  }
  throw new Error('src/compute/worker.ts must run in a worker thread or a forked child process')
}

/** A tiny nt-xent (b 2, d 4): compiles the kernels and proves the backend computes. */
function warmUp (): void {
  if (!getKind('nt-xent')) {
    tf.tidy(() => tf.matMul(tf.ones([2, 4]), tf.ones([4, 2])).dataSync())
    return
  }
  const t = (seed: number): { shape: number[], data: Float32Array } => ({ shape: [2, 4], data: Float32Array.from({ length: 8 }, (_, i) => Math.sin(seed + i)) })
  evaluate(prepare('nt-xent', { inputs: { out_1: t(1), out_2: t(2) } }))
}

/** Only a client's mistake keeps its code and message across the boundary. */
function toWireError (err: unknown): WireError {
  if (err instanceof LossServerError) return err.toJSON()
  return { code: 'internal', message: err instanceof Error ? `${err.name}: ${err.message}` : String(err) }
}

/** Buffers of a task reply that may move: every array in it is this worker's own copy. */
function replyTransfer (reply: TaskReply): ArrayBuffer[] {
  if (reply.op === 'loss') return transferList([reply.result.grads, reply.result.paramGrads])
  if (reply.op !== 'export') return []
  const arrays = [...Object.values(reply.state.params), ...Object.values(reply.state.optimizer ?? {})]
  return [...new Set(arrays.map(a => a.buffer as ArrayBuffer))]
}

async function main (): Promise<void> {
  const ch = channel()
  const instances = new InstanceHost(undefined)
  ch.onMessage(msg => {
    if (msg.type === 'configure') {
      instances.configure(msg.store)
    } else if (msg.type === 'init') {
      if (msg.store) instances.configure(msg.store)
      const t0 = performance.now()
      initBackend(msg.backend as BackendChoice)
        .then(info => {
          warmUp()
          ch.send({ type: 'ready', backend: info, warmupMs: performance.now() - t0, liveTensors: liveTensors() })
        })
        .catch(err => ch.send({ type: 'init_failed', message: (err as Error).message }))
    } else if (msg.type === 'eval') {
      const t0 = performance.now()
      // A scope around the whole evaluation frees anything a kind forgot to dispose.
      tf.engine().startScope()
      try {
        const result = evaluate(msg.request)
        tf.engine().endScope()
        const transfer = transferList([result.grads, result.paramGrads])
        ch.send({ type: 'result', job: msg.job, result, computeMs: performance.now() - t0, liveTensors: liveTensors() }, transfer)
      } catch (err) {
        tf.engine().endScope()
        ch.send({ type: 'error', job: msg.job, error: toWireError(err), computeMs: performance.now() - t0, liveTensors: liveTensors() })
      }
    } else if (msg.type === 'task') {
      const t0 = performance.now()
      // instance parameters are kept (tf.keep) past this scope; everything else is freed
      tf.engine().startScope()
      try {
        const reply = instances.run(msg.op)
        tf.engine().endScope()
        ch.send({ type: 'task_result', job: msg.job, reply, computeMs: performance.now() - t0, liveTensors: liveTensors() }, replyTransfer(reply))
      } catch (err) {
        tf.engine().endScope()
        ch.send({ type: 'error', job: msg.job, error: toWireError(err), computeMs: performance.now() - t0, liveTensors: liveTensors() })
      }
    } else if (msg.type === 'stop') {
      // --checkpoint-every > 1: steps not yet on disk are written before a graceful exit
      instances.flush()
      process.exit(0)
    }
  })
}

await main()
