// Backend selection: the only file that loads a tfjs backend.
// `auto` = tensorflow-gpu if it loads and sees a GPU, else tensorflow if it loads, else wasm.
import { createRequire } from 'node:module'
import * as tf from '@tensorflow/tfjs'
import { addonBuilt, BackendUnavailableError, type BackendChoice, type ConcreteBackend } from './backends-installed.ts'

export { BACKENDS, BackendUnavailableError, installedBackends, type BackendChoice, type ConcreteBackend } from './backends-installed.ts'

const require = createRequire(import.meta.url)

const SETUP_HINT: Record<string, string> = {
  '@tensorflow/tfjs-node': 'run `npm run setup:tensorflow` (builds the addon from the tensorflow-cpu wheel) or install with internet access',
  '@tensorflow/tfjs-node-gpu': 'install @tensorflow/tfjs-node-gpu with its install script on a CUDA machine (see the GPU Docker image)'
}

function loadNative (choice: 'tensorflow' | 'tensorflow-gpu'): void {
  const pkg = choice === 'tensorflow' ? '@tensorflow/tfjs-node' : '@tensorflow/tfjs-node-gpu'
  if (!addonBuilt(pkg)) throw new BackendUnavailableError(choice, `${pkg} has no native addon; ${SETUP_HINT[pkg]}`)
  try {
    // tfjs-node registers the 'tensorflow' backend on the shared tfjs engine.
    require(pkg)
  } catch (err) {
    throw new BackendUnavailableError(choice, `${pkg} failed to load: ${(err as Error).message.split('\n')[0]}`)
  }
}

function usesGpu (): boolean {
  const b = tf.backend() as unknown as { isUsingGpuDevice?: boolean }
  return b.isUsingGpuDevice === true
}

export interface BackendInfo {
  /** What was asked for. */
  requested: BackendChoice
  /** What runs. */
  backend: ConcreteBackend
  /** tfjs's own name of the backend ('tensorflow', 'wasm', 'cpu'). */
  tfBackend: string
  gpu: boolean
}

let current: BackendInfo | undefined

async function activate (name: ConcreteBackend): Promise<BackendInfo> {
  if (name === 'tensorflow' || name === 'tensorflow-gpu') {
    loadNative(name)
    if (!(await tf.setBackend('tensorflow'))) throw new BackendUnavailableError(name, 'tf.setBackend("tensorflow") failed')
    if (name === 'tensorflow-gpu' && !usesGpu()) throw new BackendUnavailableError(name, '@tensorflow/tfjs-node-gpu loaded but sees no GPU (check CUDA_VISIBLE_DEVICES and the CUDA 11.2 / cuDNN 8 libraries)')
  } else if (name === 'wasm') {
    await import('@tensorflow/tfjs-backend-wasm')
    if (!(await tf.setBackend('wasm'))) throw new BackendUnavailableError(name, 'the wasm module did not initialise')
  } else {
    if (!(await tf.setBackend('cpu'))) throw new BackendUnavailableError(name, 'tf.setBackend("cpu") failed')
  }
  await tf.ready()
  return { requested: name, backend: name, tfBackend: tf.getBackend(), gpu: usesGpu() }
}

/**
 * Loads and activates a backend in this thread or process. Asking for a backend that is not
 * installed throws BackendUnavailableError with the reason; `auto` falls back as documented.
 * Calling it again with the same choice is a no-op.
 */
export async function initBackend (choice: BackendChoice): Promise<BackendInfo> {
  if (current && current.requested === choice) return current
  if (choice !== 'auto') {
    current = await activate(choice)
    return current
  }
  const tried: string[] = []
  for (const candidate of ['tensorflow-gpu', 'tensorflow', 'wasm'] as const) {
    const pkg = candidate === 'tensorflow' ? '@tensorflow/tfjs-node' : '@tensorflow/tfjs-node-gpu'
    // Never load both native packages in one process: they register the same backend name.
    if (candidate !== 'wasm' && !addonBuilt(pkg)) { tried.push(`${candidate}: not built`); continue }
    try {
      current = { ...(await activate(candidate)), requested: 'auto' }
      return current
    } catch (err) {
      tried.push(`${candidate}: ${(err as Error).message}`)
      if (candidate === 'tensorflow-gpu' && tf.findBackend('tensorflow')) {
        // tfjs-node-gpu loaded without a GPU: it still computes on the CPU, as tfjs-node would.
        await tf.setBackend('tensorflow')
        current = { requested: 'auto', backend: 'tensorflow', tfBackend: 'tensorflow', gpu: false }
        return current
      }
    }
  }
  throw new BackendUnavailableError('auto', tried.join('; '))
}

export function currentBackend (): BackendInfo | undefined {
  return current
}

export function liveTensors (): number {
  return tf.memory().numTensors
}
