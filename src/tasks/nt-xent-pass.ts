// One nt-xent evaluation (../../../shared/spec/LOSSES.md "nt-xent") with the backward pass
// written out instead of recorded on tfjs's gradient tape.
//
// Why: the tape version dispatched 95 tfjs kernels per request (composite logSumExp and
// softplus, their customGrad scopes, gathers and scatters); on tfjs-node each kernel costs tens
// of microseconds of dispatch, and each elementwise pass over the (2b, 2b) logits ~0.3 ms at
// b 256, more than the products. Here tfjs runs five kernels (three products, a mask add and
// an exp); everything O(b·d) or O(b) runs in float64 JS.
//
// Math, with n = 2b rows x_k of out = concat(out_1, out_2), L = x·xᵀ/T, positive p(k) = (k + b) mod n:
//   ℓ_k = log(e^{L[k,p(k)]} + Σ_{j ∉ {k, p(k)}} e^{L[k,j]}) − L[k,p(k)] = softplus(m_k − s_k)
// with m_k the negatives' logsumexp and s_k = L[k, p(k)]; loss = mean_k ℓ_k.
// dℓ_k/dL[k,j] = e^{L[k,j] − m_k} σ(m_k − s_k) on a negative, −σ(m_k − s_k) on the positive,
// 0 on self. With G = d(loss)/dL, d(loss)/dx = (G + Gᵀ)·x / T (L is x·xᵀ/T).
//
// The kernels: E[k,j] = e^{L[k,j] − h_k} on the negatives (0 elsewhere) for a row shift h_k;
// m_k = h_k + log Σ_j E[k,j]. One product E·[x | 1] gives both E·x and the row sums, and on the
// negatives G·x / T = c ⊙ (E·x), Gᵀ·x / T = Eᵀ·(c ⊙ x) with c_k = σ_k / (n·T·Σ_j E[k,j]): no
// transpose, scale or add of an (n, n) matrix. The positive cells of G form a permutation (p is
// an involution), so their share of (G + Gᵀ)·x, −(σ_k + σ_{p(k)}) / (n·T) · x_{p(k)}, is added in JS.
//
// The shift: h_k = ‖x_k‖·max_{j≠k}‖x_j‖ / T bounds row k's logits (Cauchy–Schwarz), so nothing
// overflows, and it is folded into the first product as an extra column (x_k/T, −h_k)·(x_j, 1).
// When the bound is so loose that a row's sum falls below 1e-25 (its largest terms near
// float32's underflow: cold temperatures, far-apart rows), the pass is redone with the exact
// row max (two more kernels), the usual stable logsumexp.
//
// normalize (torch.nn.functional.normalize): y = x / max(‖x‖, 1e-12), and back
// dx = (dy − y·⟨y, dy⟩) / ‖x‖ where ‖x‖ > 1e-12, else dy / 1e-12.
import * as tf from '@tensorflow/tfjs'
import { checkFiniteLoss } from './run-with-grads.ts'

export interface NtXentPassResult {
  loss: number
  /** d(loss)/d(out_1), d(loss)/d(out_2), each (b, d); absent when not asked for */
  grads?: [Float32Array, Float32Array]
}

const NORM_EPS = 1e-12
/** Row sums below this redo the pass with the exact row max (see the header). */
const MIN_ROW_SUM = 1e-25

/** softplus(x) = log(1 + e^x) without overflow and at full relative precision for x ≪ 0. */
function softplus (x: number): number {
  return Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(x)))
}

function sigmoid (x: number): number {
  return x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x))
}

// The (n, n) mask of the last n: allocating 1 MB (b 256) costs ~0.5 ms, more than a kernel.
// Kept only up to n = 1024 (4 MB); tensors made from it never write to it.
let maskCache: { n: number, data: Float32Array } | undefined

/** (n, n) additive mask: −Infinity on self and partner cells, 0 on the negatives. */
function negativesMask (b: number): Float32Array {
  const n = 2 * b
  if (maskCache?.n === n) return maskCache.data
  const m = new Float32Array(n * n)
  for (let k = 0; k < n; k++) { m[k * (n + 1)] = -Infinity; m[k * n + ((k + b) % n)] = -Infinity }
  if (n <= 1024) maskCache = { n, data: m }
  return m
}

// Scratch for the products' operands, reused across passes: a fresh 256 KB Float32Array costs
// page faults and zeroing (b 256: three of them were ~0.4 ms of a pass on the loaded box).
// Safe because every tensor made from them is used or disposed inside the pass, and every
// element is written before use. Kept only up to SCRATCH_MAX floats each (4 MB).
const SCRATCH_MAX = 1 << 20
const scratch: Float32Array[] = [new Float32Array(0), new Float32Array(0), new Float32Array(0)]

/** A Float32Array of `size` floats, slot `i` of the scratch when it fits (contents undefined). */
function scratchArray (i: number, size: number): Float32Array {
  if (size > SCRATCH_MAX) return new Float32Array(size)
  if (scratch[i].length < size) scratch[i] = new Float32Array(Math.max(size, Math.min(SCRATCH_MAX, 2 * scratch[i].length)))
  return scratch[i].subarray(0, size)
}

/**
 * The operands of the first product in one pass over the inputs: right = (y_k, 1) and
 * left = (y_k / T, −h_k), each (n, d + 1), where y = concat(out_1, out_2) with rows
 * L2-normalised when asked (`scale[k]` = 1 / max(‖row‖, eps)); `right` is also the JS side's
 * copy of y (stride d + 1). Also the positive logits s_k = ⟨y_k, y_{p(k)}⟩ / T in float64 and
 * the bound shift h_k = ‖y_k‖·max_{j≠k}‖y_j‖ / T (as float32: the value the product subtracts).
 */
function operands (o1: Float32Array, o2: Float32Array, b: number, d: number, invT: number, normalize: boolean): { left: Float32Array, right: Float32Array, pos: Float64Array, shift: Float32Array, scale?: Float64Array } {
  const n = 2 * b
  const w = d + 1
  const left = scratchArray(0, n * w)
  const right = scratchArray(1, n * w)
  const pos = new Float64Array(n)
  const norm = new Float64Array(n)
  const scale = normalize ? new Float64Array(n) : undefined
  for (let k = 0; k < n; k++) {
    const src = k < b ? o1 : o2
    const at = (k % b) * d
    let r = 1
    if (scale) {
      let sq = 0
      for (let c = 0; c < d; c++) sq += src[at + c] * src[at + c]
      r = scale[k] = 1 / Math.max(Math.sqrt(sq), NORM_EPS)
    }
    let sq = 0
    for (let c = 0; c < d; c++) {
      const v = Math.fround(src[at + c] * r)
      right[k * w + c] = v
      left[k * w + c] = v * invT
      sq += v * v
    }
    right[k * w + d] = 1
    norm[k] = Math.sqrt(sq)
  }
  for (let k = 0; k < b; k++) {
    let acc = 0
    for (let c = 0; c < d; c++) acc += right[k * w + c] * right[(k + b) * w + c]
    pos[k] = pos[k + b] = acc * invT
  }
  let first = 0
  let second = 0
  for (let k = 0; k < n; k++) {
    if (norm[k] > first) { second = first; first = norm[k] } else if (norm[k] > second) second = norm[k]
  }
  const shift = new Float32Array(n)
  for (let k = 0; k < n; k++) {
    shift[k] = norm[k] * (norm[k] === first ? second : first) * invT
    left[k * w + d] = -shift[k]
  }
  return { left, right, pos, shift, ...(scale ? { scale } : {}) }
}

/** (n, n) left·rightᵀ; tfjs-backend-wasm multiplies transposed operands ~10x slower (mat-mul.ts). */
function productNT (left: tf.Tensor2D, right: tf.Tensor2D): tf.Tensor2D {
  return tf.getBackend() === 'wasm' ? tf.matMul(left, tf.transpose(right)) : tf.matMul(left, right, false, true)
}

function productTN (a: tf.Tensor2D, b: tf.Tensor2D): tf.Tensor2D {
  return tf.getBackend() === 'wasm' ? tf.matMul(tf.transpose(a), b) : tf.matMul(a, b, true, false)
}

interface Attempt {
  /** m_k, the negatives' logsumexp per row, or undefined when a row sum underflowed */
  lse?: Float64Array
  /** E·(y | 1), (n, d + 1) with the row sums last, and E itself for the second product */
  ex?: Float32Array
  e?: tf.Tensor2D
}

/**
 * E and its row sums for the shift in left's last column (`shift` its values; undefined: that
 * column is 0 and the exact row max shifts instead).
 */
function attempt (left: Float32Array, right: tf.Tensor2D, b: number, d: number, shift: Float32Array | undefined, gradients: boolean): Attempt {
  const n = 2 * b
  let z = tf.add(productNT(tf.tensor2d(left, [n, d + 1], 'float32'), right), tf.tensor2d(negativesMask(b), [n, n], 'float32'))
  let h: Float32Array | undefined = shift
  if (!h) {
    const mx = tf.max(z, 1, true)
    z = tf.sub(z, mx)
    h = mx.dataSync() as Float32Array
  }
  const e = tf.exp(z) as tf.Tensor2D // masked cells: e^{−∞} = 0
  // E·(y | 1): E·y and the row sums in one product; without gradients the sums alone.
  const ex = gradients ? tf.matMul(e, right).dataSync() as Float32Array : undefined
  const sums = ex ? undefined : tf.sum(e, 1).dataSync()
  const lse = new Float64Array(n)
  for (let k = 0; k < n; k++) {
    const s = ex ? ex[k * (d + 1) + d] : sums![k]
    if (shift && !(s >= MIN_ROW_SUM)) return {}
    lse[k] = h[k] + Math.log(s)
  }
  return { lse, ...(ex ? { ex, e } : {}) }
}

/**
 * The loss of LOSSES.md "nt-xent" and, when `gradients`, its gradients with respect to out_1
 * and out_2, on the active tfjs backend. Leaves no tensor behind.
 */
export function ntXentPass (o1: Float32Array, o2: Float32Array, b: number, d: number, temperature: number, normalize: boolean, gradients: boolean): NtXentPassResult {
  const n = 2 * b
  const invT = 1 / temperature
  const { left, right, pos, shift, scale } = operands(o1, o2, b, d, invT, normalize)

  const sig = new Float64Array(n)
  const c = new Float64Array(n)
  let loss = 0
  let ex: Float32Array | undefined
  let back: Float32Array | undefined
  // A scope rather than tf.tidy: no closure, so the numbers below stay plain locals.
  tf.engine().startScope()
  try {
    const r = tf.tensor2d(right, [n, d + 1], 'float32')
    let a = attempt(left, r, b, d, shift, gradients)
    if (!a.lse) {
      for (let k = 0; k < n; k++) left[k * (d + 1) + d] = 0
      a = attempt(left, r, b, d, undefined, gradients)
    }
    const lse = a.lse!
    for (let k = 0; k < n; k++) {
      loss += softplus(lse[k] - pos[k])
      sig[k] = sigmoid(lse[k] - pos[k])
    }
    loss /= n
    if (a.e && a.ex && Number.isFinite(loss)) {
      ex = a.ex
      back = secondProduct(a.e, a.ex, right, sig, c, n, d, temperature)
    }
  } finally {
    tf.engine().endScope()
  }
  checkFiniteLoss(loss)
  if (!gradients) return { loss }
  return { loss, grads: gradientsOf(right, scale, ex!, back!, sig, c, b, d, temperature) }
}

/** Eᵀ·(c ⊙ y) with c_k = σ_k / (n·T·Σ_j E[k,j]) (written into `c`); y is `right` (stride d + 1). */
function secondProduct (e: tf.Tensor2D, ex: Float32Array, right: Float32Array, sig: Float64Array, c: Float64Array, n: number, d: number, temperature: number): Float32Array {
  const w = d + 1
  const cy = scratchArray(2, n * d)
  for (let k = 0; k < n; k++) {
    const ck = c[k] = sig[k] / (n * temperature * ex[k * w + d])
    for (let i = 0; i < d; i++) cy[k * d + i] = ck * right[k * w + i]
  }
  return productTN(e, tf.tensor2d(cy, [n, d], 'float32')).dataSync() as Float32Array
}

/** c ⊙ (E·y) + Eᵀ·(c ⊙ y), the positives' share, then normalize's backward, split per input. */
function gradientsOf (right: Float32Array, scale: Float64Array | undefined, ex: Float32Array, back: Float32Array, sig: Float64Array, c: Float64Array, b: number, d: number, temperature: number): [Float32Array, Float32Array] {
  const n = 2 * b
  const w = d + 1
  const g1 = new Float32Array(b * d)
  const g2 = new Float32Array(b * d)
  const row = scale ? new Float64Array(d) : undefined
  for (let k = 0; k < n; k++) {
    const pk = (k + b) % n
    const wk = -(sig[k] + sig[pk]) / (n * temperature)
    const ck = c[k]
    const out = k < b ? g1 : g2
    const at = (k % b) * d
    const e0 = k * w
    const p0 = pk * w
    const b0 = k * d
    if (!scale) {
      for (let i = 0; i < d; i++) out[at + i] = ck * ex[e0 + i] + back[b0 + i] + wk * right[p0 + i]
      continue
    }
    // dx = (dy − y·⟨y, dy⟩)·scale, or dy·scale where the norm was clamped to eps; dy in
    // float64 (the difference cancels when dy is nearly parallel to y)
    let dot = 0
    for (let i = 0; i < d; i++) {
      const v = ck * ex[e0 + i] + back[b0 + i] + wk * right[p0 + i]
      row![i] = v
      dot += v * right[e0 + i]
    }
    const sk = scale[k]
    if (sk >= 1 / NORM_EPS) dot = 0
    for (let i = 0; i < d; i++) out[at + i] = (row![i] - right[e0 + i] * dot) * sk
  }
  return [g1, g2]
}
