// A float64, plain-JavaScript transcription of Bolts' CPCTask and PixelCNN
// (pl_bolts/losses/self_supervised_learning.py, pl_bolts/models/vision/pixel_cnn.py), written
// the way Bolts computes: NCHW direct convolutions with explicit padding, and every step's
// logits recomputed from scratch. Independent of src/ (no im2col, no shared log-sum-exp), so
// it checks the fast path, and its central differences check the gradients.
import type { HostTensor } from '../../src/tensor.ts'

export interface T64 { shape: number[], data: Float64Array }

export interface Cpc64Config {
  num_input_channels: number
  target_dim: number
  embed_scale: number
  hidden_channels: number
  num_blocks: number
  step_weighting: 'bolts' | 'uniform'
}

export type Params64 = Record<string, HostTensor | T64>

export function to64 (t: HostTensor | T64): T64 {
  return { shape: [...t.shape], data: Float64Array.from(t.data) }
}

/** nn.Conv2d with kernel (kh, kw), stride 1, zero padding padW on the width only. */
export function conv64 (x: T64, weight: HostTensor | T64, bias: HostTensor | T64, padW = 0): T64 {
  const [b, ci, h, w] = x.shape
  const [co, wi, kh, kw] = weight.shape
  if (wi !== ci) throw new Error(`conv64: weight in ${wi} != x channels ${ci}`)
  const oh = h - kh + 1
  const ow = w + 2 * padW - kw + 1
  const out = new Float64Array(b * co * oh * ow)
  for (let n = 0; n < b; n++) {
    for (let o = 0; o < co; o++) {
      for (let y = 0; y < oh; y++) {
        for (let xo = 0; xo < ow; xo++) {
          let s = bias.data[o]
          for (let c = 0; c < ci; c++) {
            for (let dy = 0; dy < kh; dy++) {
              for (let dx = 0; dx < kw; dx++) {
                const xi = xo + dx - padW
                if (xi < 0 || xi >= w) continue
                s += weight.data[((o * ci + c) * kh + dy) * kw + dx] * x.data[((n * ci + c) * h + y + dy) * w + xi]
              }
            }
          }
          out[((n * co + o) * oh + y) * ow + xo] = s
        }
      }
    }
  }
  return { shape: [b, co, oh, ow], data: out }
}

/** nn.ConstantPad2d((0, 0, 1, 0), 1): one row of 1.0 on top. */
function padTopOnes (x: T64): T64 {
  const [b, c, h, w] = x.shape
  const out = new Float64Array(b * c * (h + 1) * w).fill(1)
  for (let nc = 0; nc < b * c; nc++) out.set(x.data.subarray(nc * h * w, (nc + 1) * h * w), (nc * (h + 1) + 1) * w)
  return { shape: [b, c, h + 1, w], data: out }
}

const relu = (x: T64): T64 => ({ shape: x.shape, data: x.data.map(v => (v > 0 ? v : 0)) })

export function pixelCnn64 (z: T64, params: Params64, numBlocks: number): T64 {
  let c = z
  for (let k = 0; k < numBlocks; k++) {
    const p = (i: number, f: 'weight' | 'bias') => params[`context_cnn.blocks.${k}.${i}.${f}`]
    let y = relu(conv64(c, p(0, 'weight'), p(0, 'bias')))
    y = conv64(y, p(2, 'weight'), p(2, 'bias'))
    y = relu(conv64(padTopOnes(y), p(4, 'weight'), p(4, 'bias'), 1))
    y = conv64(y, p(6, 'weight'), p(6, 'bias'))
    const sum = new Float64Array(c.data.length)
    for (let i = 0; i < sum.length; i++) sum[i] = c.data[i] + y.data[i]
    c = { shape: c.shape, data: sum }
  }
  return relu(c)
}

/** CPCTask.forward with each step i = 1..h-2 computed once and weighted (LOSSES.md "cpc"). */
export function cpc64 (config: Cpc64Config, z: HostTensor | T64, params: Params64): { loss: number, steps: number[] } {
  const z64 = to64(z)
  const [b, , h, w] = z64.shape
  const t = config.target_dim
  const targets = conv64(z64, params['target_cnn.weight'], params['target_cnn.bias'])
  const preds = conv64(pixelCnn64(z64, params, config.num_blocks), params['pred_cnn.weight'], params['pred_cnn.bias'])
  const vec = (m: T64, n: number, y: number, x: number, scale: number): number[] => {
    const v: number[] = []
    for (let k = 0; k < t; k++) v.push(scale * m.data[((n * t + k) * h + y) * w + x])
    return v
  }
  const dot = (a: number[], b2: number[]): number => a.reduce((s, v, k) => s + v * b2[k], 0)
  const steps: number[] = []
  let loss = 0
  for (let i = 1; i <= h - 2; i++) {
    let total = 0
    let count = 0
    for (let n = 0; n < b; n++) {
      for (let y = 0; y < h - i - 1; y++) {
        for (let x = 0; x < w; x++) {
          const p = vec(preds, n, y, x, config.embed_scale)
          const logits: number[] = []
          for (let m = 0; m < b; m++) for (let yy = 0; yy < h; yy++) for (let xx = 0; xx < w; xx++) logits.push(dot(p, vec(targets, m, yy, xx, 1)))
          const label = n * h * w + (y + i + 1) * w + x
          const mx = Math.max(...logits)
          const lse = mx + Math.log(logits.reduce((s, v) => s + Math.exp(v - mx), 0))
          total += lse - logits[label]
          count++
        }
      }
    }
    steps.push(total / count)
    loss += (config.step_weighting === 'bolts' ? i : 1) * (total / count)
  }
  return { loss, steps }
}
