// The task instances a worker holds (API issue 3/6 "Placement"): parameters stay in this
// worker between calls, as float32 host arrays (what the optimizer updates and the
// checkpoint writes) and as tensors on the backend (what the loss reads), so a call copies
// no parameters across threads. An updating step is checkpointed (--checkpoint-every)
// before it is answered; a failed checkpoint of a step drops the instance from memory, which
// puts it back at its last durable state (it is reloaded from disk on next use), and the
// step is answered 503. A failed import or creation leaves what is held untouched. A replacement worker (after a crash) reloads instances the same way.
import fs from 'node:fs'
import * as tf from '@tensorflow/tfjs'
import { LossServerError } from '../errors.ts'
import type { CpcConfig } from '../../schemas/kinds/cpc.ts'
import { evaluateCpc } from '../tasks/cpc.ts'
import { initParams } from '../tasks/cpc-params.ts'
import { createOptimizer, type Optimizer } from '../tasks/optimizers/index.ts'
import { getTaskKind } from '../tasks/compute-registry.ts'
import type { EvalResult, Inputs, Params } from '../tasks/types.ts'
import type { HostTensor } from '../tensor.ts'
import { firstNonFinite } from '../compute/finite.ts'
import type { StoreSettings, TaskOp, TaskReply } from '../pool/messages.ts'
import { checkpointPath, removeCheckpoint, writeAtomic } from './checkpoint.ts'
import { isTaskId } from './ids.ts'
import { paramShapes, shapeMap, type InstanceMeta } from './instance.ts'
import { decodeCheckpoint, encodeStateFile, type InstanceState } from './state-file.ts'

interface Held {
  meta: InstanceMeta
  /** by state_dict() key, PyTorch layout (cpc); empty for other kinds */
  params: Record<string, Float32Array>
  /** the same values on the backend */
  tensors: Record<string, tf.Tensor>
  optimizer: Optimizer | null
  step: number
  /** the step of the checkpoint on disk */
  durableStep: number
}

const errno = (err: unknown): string => {
  const e = err as NodeJS.ErrnoException
  return e?.code ? `${e.code}: ${e.message}` : String((err as Error)?.message ?? err)
}

export class InstanceHost {
  private readonly held = new Map<string, Held>()

  constructor (private settings: StoreSettings | undefined) {}

  configure (settings: StoreSettings): void { this.settings = settings }

  /** Ids held in memory now (tests, metrics). */
  ids (): string[] { return [...this.held.keys()] }

  run (op: TaskOp): TaskReply {
    if (op.op === 'create') return this.create(op.meta)
    const h = this.get(op.id)
    if (h.meta.kind !== op.kind) throw new LossServerError('internal', `instance ${op.id} is '${h.meta.kind}', the request expected '${op.kind}'`)
    if (op.op === 'loss') return this.loss(h, op.request.inputs, op.request.options, op.update)
    if (op.op === 'export') return { op: 'export', state: this.snapshot(h, op.optimizer) }
    if (op.op === 'import') return this.import(h, op.state)
    // the file first: an instance whose checkpoint cannot be removed (read-only disk) is not
    // deleted, and stays held (a restart would bring it back otherwise)
    try {
      removeCheckpoint(this.file(h.meta.id))
    } catch (err) {
      if (err instanceof LossServerError) throw err
      throw new LossServerError('unavailable', `task instance ${h.meta.id} cannot be deleted: its checkpoint cannot be removed (${errno(err)}); the instance is kept`)
    }
    this.drop(h.meta.id)
    return { op: 'delete' }
  }

  /** Writes every instance whose memory is ahead of its checkpoint (graceful stop). */
  flush (): void {
    for (const h of this.held.values()) {
      if (h.step === h.durableStep) continue
      try {
        this.checkpoint(h)
      } catch {
        // nothing to tell at exit: the instance restarts from its last checkpoint
      }
    }
  }

  private file (id: string): string {
    if (!this.settings) throw new LossServerError('unavailable', 'task instances need a data directory (--data-dir); this worker pool has none')
    if (!isTaskId(id)) throw new LossServerError('internal', 'a task op without a valid id')
    return checkpointPath(this.settings.dataDir, id)
  }

  private create (meta: InstanceMeta): TaskReply {
    const shapes = paramShapes(meta.kind, meta.config)
    const params: Record<string, Float32Array> = {}
    if (meta.kind === 'cpc') for (const [name, t] of Object.entries(initParams(meta.config as unknown as CpcConfig, meta.seed))) params[name] = t.data
    const optimizer = meta.optimizer ? createOptimizer(meta.optimizer, shapeMap(shapes)) : null
    const h: Held = { meta, params, tensors: {}, optimizer, step: 0, durableStep: -1 }
    // a created instance is acknowledged only once it is on disk, whatever --checkpoint-every says
    this.checkpointOrFail(h, 'creating the instance')
    this.hold(h)
    return { op: 'create', step: 0 }
  }

  private get (id: string): Held {
    const h = this.held.get(id)
    if (h) return h
    const file = this.file(id)
    let buf: Buffer
    try {
      buf = fs.readFileSync(file)
    } catch (err) {
      throw new LossServerError('unavailable', `the checkpoint of task instance ${id} cannot be read (${errno(err)})`)
    }
    let decoded
    try {
      decoded = decodeCheckpoint(buf, id)
    } catch (err) {
      throw new LossServerError('unavailable', `the checkpoint of task instance ${id} is damaged (${(err as Error).message}); it will be quarantined at the next start`)
    }
    const { meta, state } = decoded
    const optimizer = meta.optimizer ? createOptimizer(meta.optimizer, shapeMap(paramShapes(meta.kind, meta.config))) : null
    if (optimizer && state.optimizer) optimizer.loadState(state.optimizer)
    const loaded: Held = { meta, params: state.params, tensors: {}, optimizer, step: state.step, durableStep: state.step }
    this.hold(loaded)
    return loaded
  }

  private hold (h: Held): void {
    this.upload(h)
    this.held.set(h.meta.id, h)
  }

  /** (Re)creates the backend copies of the parameters; kept out of any evaluation scope. */
  private upload (h: Held): void {
    const shapes = paramShapes(h.meta.kind, h.meta.config)
    tf.dispose(Object.values(h.tensors))
    h.tensors = {}
    for (const { name, shape } of shapes) h.tensors[name] = tf.keep(tf.tensor(h.params[name], shape, 'float32'))
  }

  private drop (id: string): void {
    const h = this.held.get(id)
    if (!h) return
    tf.dispose(Object.values(h.tensors))
    this.held.delete(id)
  }

  private loss (h: Held, inputs: Inputs, options: Record<string, any>, update: boolean): TaskReply {
    const { meta } = h
    const kind = getTaskKind(meta.kind)!
    let result: EvalResult
    if (meta.kind === 'cpc') {
      const view: Params = {}
      for (const { name, shape } of paramShapes(meta.kind, meta.config)) view[name] = { shape, data: h.params[name] }
      // z against the config (the parameters were checked when they were loaded)
      kind.check(meta.config, inputs, view, options)
      result = evaluateCpc(meta.config as unknown as CpcConfig, inputs.z as HostTensor, h.tensors, {
        gradients: options.gradients !== false,
        param_grads: options.param_grads === true || update
      })
    } else {
      result = kind.evaluate(meta.config, inputs, undefined, options)
    }
    if (update) {
      if (!h.optimizer || !result.paramGrads) throw new LossServerError('internal', `instance ${meta.id}: an update without optimizer or parameter gradients`)
      const grads: Record<string, Float32Array> = {}
      for (const [name, g] of Object.entries(result.paramGrads)) {
        const bad = firstNonFinite(g.data)
        if (bad >= 0) throw new LossServerError('non_finite', `the gradient of '${name}' has ${g.data[bad]} at flat index ${bad} (loss ${result.loss}); the step was not applied`, ['inputs'])
        grads[name] = g.data
      }
      if (options.param_grads !== true) delete result.paramGrads
      try {
        h.optimizer.step(h.params, grads)
      } catch (err) {
        this.drop(meta.id) // parameters may be half-updated: back to the checkpoint
        throw err
      }
      h.step = h.optimizer.steps
      if (h.step - h.durableStep >= (this.settings?.checkpointEvery ?? 1)) {
        try {
          this.checkpointOrFail(h, `checkpointing step ${h.step}`)
        } catch (err) {
          // memory is ahead of the disk: back to the checkpoint (reloaded on next use)
          this.drop(meta.id)
          throw err
        }
      }
      this.upload(h)
    }
    return { op: 'loss', result, step: h.step }
  }

  private import (h: Held, state: InstanceState): TaskReply {
    const { meta } = h
    const optimizer = meta.optimizer ? createOptimizer(meta.optimizer, shapeMap(paramShapes(meta.kind, meta.config))) : null
    if (optimizer && state.optimizer) optimizer.loadState(state.optimizer)
    const next: Held = { meta, params: state.params, tensors: {}, optimizer, step: optimizer?.steps ?? 0, durableStep: -1 }
    // on disk first: a failed write leaves the instance as it was
    this.checkpointOrFail(next, 'importing the state')
    this.drop(meta.id)
    this.hold(next)
    return { op: 'import', step: next.step }
  }

  private snapshot (h: Held, withOptimizer: boolean): InstanceState {
    const params: Record<string, Float32Array> = {}
    for (const [name, d] of Object.entries(h.params)) params[name] = d.slice()
    return { params, step: h.step, ...(withOptimizer && h.optimizer ? { optimizer: h.optimizer.state() } : {}) }
  }

  private checkpoint (h: Held): void {
    const state: InstanceState = { params: h.params, step: h.step, ...(h.optimizer ? { optimizer: h.optimizer.state() } : {}) }
    writeAtomic(this.file(h.meta.id), encodeStateFile(h.meta, state, { optimizer: true, checkpoint: true }))
    h.durableStep = h.step
  }

  /**
   * Writes `h`'s checkpoint or throws 503 naming the file system's error. Drops nothing: a
   * creation or an import that fails has not replaced what is held (they write first), and
   * an updating step rolls itself back.
   */
  private checkpointOrFail (h: Held, what: string): void {
    try {
      this.checkpoint(h)
    } catch (err) {
      if (err instanceof LossServerError) throw err
      throw new LossServerError('unavailable', `checkpoint failed while ${what} of task instance ${h.meta.id} (${errno(err)}); nothing was applied: the instance stays at its last checkpoint`)
    }
  }
}
