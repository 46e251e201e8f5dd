// The demo's encoder: a small convolutional network in TensorFlow.js (tf ops on tf.variables,
// NHWC as tfjs convolves) that maps a 16x16 RGB view to two feature maps, as AMDIM's
// encoder exposes maps of several scales (Bachman et al. 2019, section 3.4; Bolts
// pl_bolts/models/self_supervised/amdim/networks.py returns r1, r5, r7):
//   map 0: (b, 1, 1, C), a global summary of the view
//   map 1: (b, 4, 4, C), local features
// The server speaks PyTorch's NCHW (API.md "Tensors"), so maps go out transposed and the
// gradients that come back are transposed the same way inside the surrogate.
import * as tf from '@tensorflow/tfjs'
import { Prng } from '../src/tasks/prng.ts'
import { CHANNELS } from './data.ts'

export interface Encoder {
  /** channels C of both maps */
  channels: number
  variables: tf.Variable[]
  /** NHWC views -> [map0 (b, 1, 1, C), map1 (b, 4, 4, C)], NHWC */
  forward (x: tf.Tensor4D): [tf.Tensor4D, tf.Tensor4D]
  dispose (): void
}

/** He-uniform weights (Kaiming He et al. 2015), drawn from the seeded PRNG, so a seed fixes them. */
function heUniform (rng: Prng, shape: number[], fanIn: number, name: string): tf.Variable {
  const n = shape.reduce((a, b) => a * b, 1)
  const bound = Math.sqrt(6 / fanIn)
  const data = new Float32Array(n)
  for (let i = 0; i < n; i++) data[i] = rng.uniform(-bound, bound)
  return variableOf(tf.tensor(data, shape), name)
}

/** A trainable variable from a fresh tensor; the tensor itself is freed (tf.variable keeps its own reference). */
function variableOf (init: tf.Tensor, name: string): tf.Variable {
  const v = tf.variable(init, true, name)
  init.dispose()
  return v
}

export function createEncoder (seed: number, channels = 32): Encoder {
  const rng = new Prng(seed)
  const conv = (k: number, cin: number, cout: number, name: string): { w: tf.Variable, b: tf.Variable } => ({
    w: heUniform(rng, [k, k, cin, cout], k * k * cin, `${name}.w`),
    b: variableOf(tf.zeros([cout]), `${name}.b`)
  })
  const c1 = conv(3, CHANNELS, 16, 'conv1') // 16x16
  const c2 = conv(3, 16, 32, 'conv2') // stride 2: 8x8
  const c3 = conv(3, 32, 32, 'conv3') // stride 2: 4x4
  const local = conv(1, 32, channels, 'local') // map 1
  const global = conv(1, 32, channels, 'global') // map 0, on the pooled features
  const layers = [c1, c2, c3, local, global]
  const apply = (x: tf.Tensor4D, l: { w: tf.Variable, b: tf.Variable }, stride: number): tf.Tensor4D =>
    tf.add(tf.conv2d(x, l.w as tf.Tensor4D, stride, 'same'), l.b)
  return {
    channels,
    variables: layers.flatMap(l => [l.w, l.b]),
    forward (x) {
      return tf.tidy(() => {
        // centred pixels: with all-positive inputs every image starts with nearly the same
        // features, and the contrastive gradients are tiny until they differ
        const h1 = tf.elu(apply(tf.sub(x, 0.3), c1, 1))
        const h2 = tf.elu(apply(h1, c2, 2))
        const h3 = tf.elu(apply(h2, c3, 2))
        const map1 = apply(h3, local, 1)
        const pooled = tf.mean(h3, [1, 2], true) as tf.Tensor4D
        const map0 = apply(pooled, global, 1)
        return [map0, map1] as [tf.Tensor4D, tf.Tensor4D]
      })
    },
    dispose () {
      for (const l of layers) { l.w.dispose(); l.b.dispose() }
    }
  }
}

/** A NHWC map as the host tensor the server wants: NCHW float32. */
export function toNchw (map: tf.Tensor4D): { shape: number[], data: Float32Array } {
  const t = tf.transpose(map, [0, 3, 1, 2])
  const out = { shape: t.shape.slice(), data: t.dataSync() as Float32Array }
  t.dispose()
  return out
}

/**
 * One optimizer step on the encoder from the server's gradients g_k = dL/d(map_k) (NCHW).
 * The surrogate  S = sum_k sum(map_k * stopGradient(g_k))  has dS/dθ = sum_k J_kᵀ g_k, which
 * is exactly dL/dθ by the chain rule, so minimizing S steps the encoder as if the loss had
 * been computed here (the same trick as torch's map.backward(grad)). tfjs keeps no graph
 * between calls, so the forward pass is recomputed inside minimize's tape; it is
 * deterministic, so these are the maps the server saw.
 */
export function applyServerGrads (
  optimizer: tf.Optimizer,
  encoder: Encoder,
  views: tf.Tensor4D[],
  grads: Array<Array<{ shape: number[], data: Float32Array } | undefined>>
): void {
  // constants: no gradient flows into them. A map without a gradient (cpc uses map 1 only) adds nothing.
  const g = grads.map(perView => perView.map(t => t === undefined ? undefined : tf.tensor(t.data, t.shape)))
  try {
    optimizer.minimize(() => {
      const terms: tf.Scalar[] = []
      views.forEach((x, v) => {
        if (g[v] === undefined || g[v].every(t => t === undefined)) return // this view sent nothing
        encoder.forward(x).forEach((m, k) => {
          const gk = g[v][k]
          if (gk !== undefined) terms.push(tf.sum(tf.mul(tf.transpose(m, [0, 3, 1, 2]), gk)))
        })
      })
      return tf.addN(terms) as tf.Scalar
    }, false, encoder.variables)
  } finally {
    for (const perView of g) for (const t of perView) t?.dispose()
  }
}
