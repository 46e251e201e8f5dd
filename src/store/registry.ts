// The main thread's table of task instances: who owns each, which worker is its home, its
// step, and the limits (--max-instances, --max-instance-bytes). Parameters never live here:
// every op that touches them is a job on the home worker (src/store/held.ts), and the
// pool runs one worker's jobs in arrival order, so the calls on one instance are
// serialised while different instances run in parallel on different workers.
import { LossServerError } from '../errors.ts'
import type { WorkerPool, RunMeta, RunOptions } from '../pool/pool.ts'
import type { TaskOp, TaskReply } from '../pool/messages.ts'
import type { PreparedRequest } from '../compute/evaluate.ts'
import { parseOptimizerSpec } from '../tasks/optimizers/index.ts'
import { getKind, kindNames } from '../tasks/registry.ts'
import { zodToError } from '../compute/evaluate.ts'
import type { EvalResult } from '../tasks/types.ts'
import type { TaskInfo } from '../../schemas/task.ts'
import { isTaskId, newTaskId } from './ids.ts'
import { instanceBytes, paramShapes, type InstanceMeta } from './instance.ts'
import { restoreInstances, type RestoreReport } from './restore.ts'
import type { InstanceState } from './state-file.ts'

export interface RegistryOptions {
  dataDir: string
  checkpointEvery: number
  maxInstances: number
  maxInstanceBytes: number
}

interface Entry {
  meta: InstanceMeta
  home: number
  step: number
  /** set when DELETE began: the instance is gone for every new call */
  deleting: boolean
}

export interface CreateInput {
  kind: string
  config?: unknown
  seed?: number
  optimizer?: unknown
}

const MiB = 1024 * 1024
const size = (n: number): string => n >= MiB ? `${(n / MiB).toFixed(1)} MiB` : `${n} bytes`

export class TaskRegistry {
  private readonly entries = new Map<string, Entry>()
  /** creations in flight count against --max-instances */
  private reserved = 0

  constructor (private readonly pool: WorkerPool, readonly options: RegistryOptions) {}

  /** Reads the data directory (start-up) and hands the store settings to the workers. */
  restore (): RestoreReport {
    const report = restoreInstances(this.options.dataDir)
    this.pool.configureStore({ dataDir: this.options.dataDir, checkpointEvery: this.options.checkpointEvery })
    for (const { meta, step } of report.instances) this.entries.set(meta.id, { meta, home: this.leastLoaded(), step, deleting: false })
    return report
  }

  get count (): number { return this.entries.size }

  /** The worker with the fewest instances (ties: the lowest index). */
  private leastLoaded (): number {
    const load = new Array<number>(this.pool.size).fill(0)
    for (const e of this.entries.values()) load[e.home]++
    return load.indexOf(Math.min(...load))
  }

  /** The instance if `owner` may see it; 404 unknown_task otherwise (no difference is shown). */
  private entry (id: string, owner: string | null): Entry {
    const e = isTaskId(id) ? this.entries.get(id) : undefined
    // owner null: the server runs without API keys, every instance is visible
    if (!e || e.deleting || (owner !== null && e.meta.owner !== owner)) {
      throw new LossServerError('unknown_task', `no task instance '${String(id).slice(0, 64)}'`)
    }
    return e
  }

  info (id: string, owner: string | null): TaskInfo {
    return describe(this.entry(id, owner))
  }

  list (owner: string | null): TaskInfo[] {
    const out: TaskInfo[] = []
    for (const e of this.entries.values()) if (!e.deleting && (owner === null || e.meta.owner === owner)) out.push(describe(e))
    return out.sort((a, b) => a.created_at.localeCompare(b.created_at) || a.id.localeCompare(b.id))
  }

  /**
   * The kind of instance `id` whoever owns it, or undefined (metrics: a label from the
   * server's own table, never the client's string).
   */
  kindOf (id: string): string | undefined {
    return isTaskId(id) ? this.entries.get(id)?.meta.kind : undefined
  }

  /** The instance's description (kind, config) for preparing a request; 404 as entry(). */
  meta (id: string, owner: string | null): InstanceMeta {
    return this.entry(id, owner).meta
  }

  async create (input: CreateInput, owner: string | null, opts: RunOptions = {}): Promise<TaskInfo> {
    const kind = getKind(input.kind)
    if (!kind) throw new LossServerError('unknown_kind', `unknown kind '${String(input.kind).slice(0, 64)}'; expected one of ${kindNames().join(', ')}`, ['kind'])
    const config = kind.configSchema.safeParse(input.config ?? {})
    if (!config.success) throw zodToError(config.error, ['config'], 'invalid_config')
    let optimizer = null
    if (input.optimizer !== undefined) {
      if (!kind.hasParams) throw new LossServerError('invalid_config', `kind '${kind.name}' has no parameters: an optimizer would have nothing to train`, ['optimizer'])
      optimizer = parseOptimizerSpec(input.optimizer, ['optimizer'])
    }
    // the size from the config alone, before any parameter list is built (instance.ts)
    const bytes = instanceBytes(kind.name, config.data, optimizer)
    if (bytes > this.options.maxInstanceBytes) {
      throw new LossServerError('too_large', `this instance would hold ${size(bytes)} of parameters and optimizer state, over the limit of ${size(this.options.maxInstanceBytes)} (--max-instance-bytes)`, ['config'])
    }
    if (this.entries.size + this.reserved >= this.options.maxInstances) {
      throw new LossServerError('overloaded', `the server holds ${this.entries.size} task instances, its limit (--max-instances ${this.options.maxInstances}); delete some first`)
    }
    const meta: InstanceMeta = {
      id: newTaskId(),
      kind: kind.name,
      config: config.data,
      optimizer,
      owner,
      created_at: new Date().toISOString(),
      seed: input.seed ?? Math.floor(Math.random() * 0x100000000)
    }
    const home = this.leastLoaded()
    this.reserved++
    try {
      await this.pool.runTask({ op: 'create', meta }, home, opts)
    } finally {
      this.reserved--
    }
    const e: Entry = { meta, home, step: 0, deleting: false }
    this.entries.set(meta.id, e)
    return describe(e)
  }

  async delete (id: string, owner: string | null): Promise<void> {
    const e = this.entry(id, owner)
    e.deleting = true
    try {
      // after every call already queued on the instance
      await this.pool.runTask({ op: 'delete', id, kind: e.meta.kind }, e.home)
      this.entries.delete(id)
    } catch (err) {
      e.deleting = false
      throw err
    }
  }

  /**
   * One evaluation with the instance's config and parameters, and one optimizer step when
   * `update`. `request` was prepared on the main thread (src/store/task-request.ts).
   */
  async loss (id: string, owner: string | null, request: PreparedRequest, update: boolean, opts: RunOptions = {}): Promise<{ result: EvalResult, step: number, meta: RunMeta }> {
    const e = this.entry(id, owner)
    const out = await this.run(e, { op: 'loss', id, kind: e.meta.kind, request, update }, opts)
    if (out.reply.op !== 'loss') throw new LossServerError('internal', 'a loss op answered with ' + out.reply.op)
    return { result: out.reply.result, step: out.reply.step, meta: out.meta }
  }

  async exportState (id: string, owner: string | null, optimizer: boolean): Promise<{ meta: InstanceMeta, state: InstanceState }> {
    const e = this.entry(id, owner)
    const out = await this.run(e, { op: 'export', id, kind: e.meta.kind, optimizer })
    if (out.reply.op !== 'export') throw new LossServerError('internal', 'an export op answered with ' + out.reply.op)
    return { meta: e.meta, state: out.reply.state }
  }

  async importState (id: string, owner: string | null, state: InstanceState): Promise<TaskInfo> {
    const e = this.entry(id, owner)
    await this.run(e, { op: 'import', id, kind: e.meta.kind, state })
    return describe(e)
  }

  private async run (e: Entry, op: TaskOp, opts: RunOptions = {}): Promise<{ reply: TaskReply, meta: RunMeta }> {
    const out = await this.pool.runTask(op, e.home, opts)
    const r = out.reply
    // the worker's word is the truth (after a rollback or a reload it can be behind)
    if (r.op === 'loss' || r.op === 'import') e.step = r.step
    else if (r.op === 'export') e.step = r.state.step
    return out
  }
}

function describe (e: Entry): TaskInfo {
  const { meta } = e
  return {
    id: meta.id,
    kind: meta.kind,
    config: meta.config,
    step: e.step,
    params: paramShapes(meta.kind, meta.config),
    optimizer: meta.optimizer,
    created_at: meta.created_at
  }
}
