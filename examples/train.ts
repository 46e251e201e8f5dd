// The demo's two training loops. The encoder runs in this process; the loss and its gradient
// with respect to the encoder's feature maps come from the server over one WebSocket
// (LossStream); the encoder steps with those gradients (encoder.ts applyServerGrads).
//   amdim: feature-map-contrastive over map 0 (1x1) and map 1 (4x4), comparisons "01, 11"
//          (global-to-local and local-to-local, the pairs of Bolts' AMDIM "01, 02, 11" that
//          two scales allow), stateless: each frame carries the config.
//   cpc:   a cpc task instance on the server (its PixelCNN and 1x1 heads, with its own Adam)
//          trains together with the encoder: each frame sends z = map 1 of a view with
//          options.update true; the server steps its head, this process steps the encoder.
import * as tf from '@tensorflow/tfjs'
import { LossClient, type LossResult } from '../src/client/index.ts'
import type { ClientTensor } from '../src/client/tensors.ts'
import { initBackend, type BackendChoice, type BackendInfo } from '../src/compute/backend.ts'
import { Prng } from '../src/tasks/prng.ts'
import { viewPairs } from './data.ts'
import { applyServerGrads, createEncoder, toNchw, type Encoder } from './encoder.ts'
import { progressBar } from './progress.ts'

export interface DemoOptions {
  /** base URL of the server, e.g. http://127.0.0.1:8080 */
  url: string
  steps: number
  /** images per step (default 16) */
  batch?: number
  /** encoder channels C (default 32) */
  channels?: number
  /** Adam learning rate of the encoder (and of the cpc instance) (default 5e-3) */
  lr?: number
  seed?: number
  apiKey?: string
  /** backend of this process's encoder (default auto: tensorflow if built, else cpu; never wasm) */
  backend?: BackendChoice
  /** draw the progress bar on stderr (default true) */
  progress?: boolean
  /** cpc: keep the task instance on the server at the end (default: delete it) */
  keepTask?: boolean
}

export interface DemoResult {
  losses: number[]
  /** the backend the encoder ran on */
  backend: string
  /** cpc: the task instance trained with the encoder */
  task?: string
}

/** Mean of the first and of the last k losses, the numbers the demo prints at the end. */
export function firstLastMeans (losses: number[], k = 5): { first: number, last: number } {
  const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length
  const kk = Math.max(1, Math.min(k, Math.floor(losses.length / 2)))
  return { first: mean(losses.slice(0, kk)), last: mean(losses.slice(-kk)) }
}

/**
 * The encoder's backend. tfjs's wasm backend has no kernels for the gradients of a
 * convolution (Conv2DBackpropFilter / Conv2DBackpropInput are not registered), so it cannot
 * train the encoder: auto falls back to cpu where it would pick wasm, and wasm is refused.
 */
async function encoderBackend (choice: BackendChoice): Promise<BackendInfo> {
  if (choice === 'wasm') throw new Error("the encoder cannot train on 'wasm' (tfjs's wasm backend has no convolution gradient kernels); use tensorflow or cpu")
  const info = await initBackend(choice)
  return info.backend === 'wasm' ? await initBackend('cpu') : info
}

interface Loop {
  label: string
  /** views per image the loss needs: 2 (amdim: two views) or 1 (cpc: one image's grid) */
  views: 1 | 2
  /** one server evaluation for the step's maps ([view][map], NHWC) */
  evaluate (maps: Array<[tf.Tensor4D, tf.Tensor4D]>, step: number): Promise<LossResult>
  /** the server's gradients as [view][map] (undefined: that map has none) */
  grads (r: LossResult): Array<Array<ClientTensor | undefined>>
  close (): Promise<void>
}

async function run (opts: DemoOptions, loop: (client: LossClient, encoder: Encoder) => Promise<Loop & { task?: string }>): Promise<DemoResult> {
  const info = await encoderBackend(opts.backend ?? 'auto')
  const seed = opts.seed ?? 1
  const batch = opts.batch ?? 16
  const rng = new Prng(seed)
  const encoder = createEncoder(seed + 1, opts.channels ?? 32)
  const optimizer = tf.train.adam(opts.lr ?? 5e-3)
  const client = new LossClient({ url: opts.url, ...(opts.apiKey !== undefined ? { apiKey: opts.apiKey } : {}) })
  const l = await loop(client, encoder)
  const bar = progressBar(opts.steps, l.label, process.stderr, opts.progress ?? true)
  const losses: number[] = []
  try {
    for (let step = 0; step < opts.steps; step++) {
      const pair = viewPairs(rng, batch)
      const views = [tf.tensor4d(pair.view1, pair.shape)]
      if (l.views === 2) views.push(tf.tensor4d(pair.view2, pair.shape))
      try {
        const maps = views.map(v => encoder.forward(v))
        let r: LossResult
        try {
          r = await l.evaluate(maps, step)
        } finally {
          for (const m of maps) tf.dispose(m)
        }
        losses.push(r.loss)
        applyServerGrads(optimizer, encoder, views, l.grads(r))
        bar.step(step, r.loss)
      } finally {
        tf.dispose(views)
      }
    }
  } finally {
    bar.done()
    await l.close()
    encoder.dispose()
    optimizer.dispose()
  }
  return { losses, backend: info.backend, ...(l.task !== undefined ? { task: l.task } : {}) }
}

/** AMDIM's feature-map-contrastive task over maps of two scales, stateless, over the stream. */
export async function trainAmdim (opts: DemoOptions): Promise<DemoResult> {
  const seed = opts.seed ?? 1
  return await run(opts, async client => {
    const stream = await client.stream({ maxInFlight: 1 })
    return {
      label: 'amdim',
      views: 2,
      async evaluate (maps, step) {
        return await stream.loss('feature-map-contrastive', {
          config: { comparisons: '01, 11', tclip: 10, bidirectional: true },
          inputs: { anchor: maps[0].map(toNchw), positive: maps[1].map(toNchw) },
          // the server's location draws, seeded per step: the run is reproducible
          options: { seed: (seed * 100_003 + step) >>> 0 }
        })
      },
      close: async () => { await stream.close() },
      grads: r => [r.grads!.anchor as ClientTensor[], r.grads!.positive as ClientTensor[]]
    }
  })
}

/** Encoder plus a server-held cpc instance (its own Adam), trained together over the stream. */
export async function trainCpc (opts: DemoOptions): Promise<DemoResult> {
  const seed = opts.seed ?? 1
  return await run(opts, async (client, encoder) => {
    const task = await client.createTask({
      kind: 'cpc',
      config: { num_input_channels: encoder.channels, target_dim: 16, hidden_channels: 32, num_blocks: 2 },
      seed,
      optimizer: { name: 'adam', lr: opts.lr ?? 5e-3 }
    })
    const stream = await client.stream({ maxInFlight: 1 })
    return {
      label: 'cpc',
      views: 1,
      task: task.id,
      async evaluate (maps, step) {
        // z = map 1 (4x4) of one view: CPC predicts within one image's grid
        return await stream.taskLoss(task.id, { inputs: { z: toNchw(maps[0][1]) }, options: { update: true, seed: (seed * 100_003 + step) >>> 0 } })
      },
      close: async () => {
        await stream.close()
        if (opts.keepTask !== true) await client.deleteTask(task.id)
      },
      grads: r => [[undefined, r.grads!.z as ClientTensor]]
    }
  })
}
