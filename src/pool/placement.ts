// Where workers run: how many, on which transport, with which environment. Decided on the
// main thread without loading any backend (loading tfjs-node here would cost memory and
// could bind a GPU to the wrong process).
import { installedBackends, type BackendChoice } from '../compute/backends-installed.ts'
import type { Transport } from './worker-handle.ts'

export interface Placement {
  /** what each worker asks initBackend() for */
  backend: BackendChoice
  transport: Transport
  workers: number
  /** child processes: environment of worker i */
  envOf?: (i: number) => NodeJS.ProcessEnv
}

export interface PlacementInput {
  backend: BackendChoice
  /** explicit count, or undefined for the default of the backend */
  workers?: number
  cores: number
  /** CUDA device ids visible to this process */
  gpuDevices: string[]
  /** the environment children inherit (from src/config.ts, the only reader of process.env) */
  baseEnv: NodeJS.ProcessEnv
}

export function placeWorkers (p: PlacementInput): Placement {
  const gpu = p.backend === 'tensorflow-gpu' ||
    (p.backend === 'auto' && p.gpuDevices.length > 0 && installedBackends().includes('tensorflow-gpu'))
  if (!gpu) {
    // 'auto' in a thread never picks tensorflow-gpu unless it is built; when it is built but no
    // device is visible it falls back to the CPU inside tfjs-node-gpu, still fine in a thread.
    return { backend: p.backend, transport: 'thread', workers: p.workers ?? Math.max(1, p.cores) }
  }
  const devices = p.gpuDevices.length > 0 ? p.gpuDevices : ['0']
  return {
    backend: 'tensorflow-gpu',
    transport: 'process',
    workers: p.workers ?? devices.length,
    // one device per process; several workers on one device share it round-robin
    envOf: i => ({ ...p.baseEnv, CUDA_VISIBLE_DEVICES: devices[i % devices.length], TF_FORCE_GPU_ALLOW_GROWTH: 'true' })
  }
}
