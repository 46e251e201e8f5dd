// The PixelCNN context network (src/tasks/pixel-cnn.ts) on every backend: values against the
// float64 transcription of Bolts' pixel_cnn.py, gradients w.r.t. the input and every weight
// (the wasm backend has no Conv2DBackpropFilter: this is what the matmul form is for), and
// the structure Bolts' padding gives: causal in the rows, edge columns that see only biases.
import t from 'tap'
import * as tf from '@tensorflow/tfjs'
import { initBackend, liveTensors } from '../../src/compute/backend.ts'
import { cpcConfig } from '../../schemas/kinds/cpc.ts'
import { initParams } from '../../src/tasks/cpc-params.ts'
import { pixelCnn, pixelCnnBlocks } from '../../src/tasks/pixel-cnn.ts'
import { Prng } from '../../src/tasks/prng.ts'
import type { HostTensor } from '../../src/tensor.ts'
import type { Params } from '../../src/tasks/types.ts'
import { TEST_BACKENDS } from '../helpers/backends.ts'
import { relErrNorm } from '../helpers/fixtures.ts'
import { pixelCnn64, to64, type Params64, type T64 } from './cpc-reference64.ts'

const BLOCK_NAMES = (k: number): string[] => [0, 2, 4, 6].flatMap(i => [`context_cnn.blocks.${k}.${i}.weight`, `context_cnn.blocks.${k}.${i}.bias`])

function setup (c: number, hidden: number, blocks: number, zShape: number[], seed: number): { z: HostTensor, params: Params, names: string[] } {
  const all = initParams(cpcConfig.parse({ num_input_channels: c, target_dim: 1, hidden_channels: hidden, num_blocks: blocks }), seed)
  const names = Array.from({ length: blocks }, (_, k) => BLOCK_NAMES(k)).flat()
  const params: Params = Object.fromEntries(names.map(n => [n, all[n]]))
  // larger biases than the default init, so both sides of every ReLU are exercised
  for (const n of names) if (n.endsWith('bias')) params[n].data.forEach((v, i, a) => { a[i] = 3 * v })
  const prng = new Prng(seed + 1000)
  const z = { shape: zShape, data: Float32Array.from({ length: zShape.reduce((a, d) => a * d, 1) }, () => prng.uniform(-1, 1)) }
  return { z, params, names }
}

/** PixelCNN on the active backend; z and the result in NCHW like the wire. */
function run (z: HostTensor, params: Params, blocks: number): Float32Array {
  return tf.tidy(() => {
    const p = Object.fromEntries(Object.entries(params).map(([k, v]) => [k, tf.tensor(v.data, v.shape)]))
    const x = tf.transpose(tf.tensor4d(z.data, z.shape as [number, number, number, number]), [0, 2, 3, 1]) as tf.Tensor4D
    return tf.transpose(pixelCnn(x, pixelCnnBlocks(p, blocks)), [0, 3, 1, 2])
  }).dataSync() as Float32Array
}

// S = sum(context ⊙ R) for a fixed random R: a scalar whose gradient reaches every weight.
const grad = setup(3, 4, 2, [2, 3, 4, 5], 5)
const prngR = new Prng(77)
const R = Float64Array.from({ length: grad.z.data.length }, () => prngR.uniform(-1, 1))
const p64: Params64 = Object.fromEntries(Object.entries(grad.params).map(([k, v]) => [k, to64(v)]))
const z64 = to64(grad.z)
const S64 = (): number => pixelCnn64(z64, p64, 2).data.reduce((s, v, i) => s + v * R[i], 0)
const EPS = 1e-5
const central = (x: T64, i: number): number => {
  const v = x.data[i]
  x.data[i] = v + EPS
  const up = S64()
  x.data[i] = v - EPS
  const down = S64()
  x.data[i] = v
  return (up - down) / (2 * EPS)
}
const fdZ = Array.from(z64.data, (_, i) => central(z64, i))
const fdW = Object.entries(p64).flatMap(([name, p]) => [0, p.data.length - 1, Math.floor(p.data.length / 2)].map(index => ({ name, index, value: central(p as T64, index) })))

for (const backend of TEST_BACKENDS) {
  t.test(`PixelCNN on ${backend}`, async t => {
    await initBackend(backend)

    t.test('matches the float64 transcription of Bolts', async t => {
      for (const [k, [shape, hidden, blocks]] of ([[[2, 3, 4, 5], 6, 2], [[1, 2, 3, 3], 4, 1], [[2, 4, 6, 3], 5, 3], [[1, 3, 3, 8], 7, 2]] as const).entries()) {
        const { z, params } = setup(shape[1], hidden, blocks, [...shape], 10 + k)
        const err = relErrNorm(run(z, params, blocks), pixelCnn64(to64(z), params, blocks).data)
        t.ok(err < 1e-6, `z ${shape.join('x')}, H ${hidden}, ${blocks} blocks: relative error ${err}`)
      }
    })

    t.test('gradients w.r.t. the input and every weight match central differences', async t => {
      const before = liveTensors()
      const names = grad.names
      const grads = tf.tidy(() => {
        const xs = [tf.tensor(grad.z.data, grad.z.shape), ...names.map(n => tf.tensor(grad.params[n].data, grad.params[n].shape))]
        const r = tf.tensor(Float32Array.from(R), grad.z.shape)
        const f = (...args: tf.Tensor[]): tf.Scalar => {
          const p = Object.fromEntries(names.map((n, i) => [n, args[i + 1]]))
          const x = tf.transpose(args[0], [0, 2, 3, 1]) as tf.Tensor4D
          return tf.sum(tf.mul(tf.transpose(pixelCnn(x, pixelCnnBlocks(p, 2)), [0, 3, 1, 2]), r))
        }
        return tf.grads(f)(xs)
      })
      const host = grads.map(g => g.dataSync() as Float32Array)
      tf.dispose(grads)
      t.equal(liveTensors(), before, 'no tensor left behind')
      const err = relErrNorm(host[0], fdZ)
      t.ok(err <= 1e-5, `d S / d z: relative error ${err}`)
      const close = (g: number, fd: number): boolean => Math.abs(g - fd) <= 1e-5 + 1e-4 * Math.abs(fd)
      const bad = fdW.filter(s => !close(host[names.indexOf(s.name) + 1][s.index], s.value))
        .map(s => `${s.name}[${s.index}]: ${host[names.indexOf(s.name) + 1][s.index]} vs ${s.value}`)
      t.same(bad, [], `${fdW.length} weight and bias gradients, PyTorch layout`)
      t.ok(fdW.filter(s => s.name.endsWith('.weight')).some(s => Math.abs(s.value) > 1e-2), 'the weight gradients checked are not all tiny')
    })

    t.test('causal in the rows: context row y depends only on rows <= y of z', async t => {
      const { z, params } = setup(3, 6, 3, [1, 3, 5, 4], 31)
      const base = run(z, params, 3)
      const moved = { shape: z.shape, data: z.data.slice() }
      for (let c = 0; c < 3; c++) for (let x = 0; x < 4; x++) moved.data[(c * 5 + 2) * 4 + x] += 1 // every pixel of row 2
      const out = run(moved, params, 3)
      const rowDiff = (y: number): number => {
        let d = 0
        for (let c = 0; c < 3; c++) for (let x = 0; x < 4; x++) d = Math.max(d, Math.abs(out[(c * 5 + y) * 4 + x] - base[(c * 5 + y) * 4 + x]))
        return d
      }
      t.ok(rowDiff(0) <= 1e-6 && rowDiff(1) <= 1e-6, `rows 0 and 1 unchanged (${rowDiff(0)}, ${rowDiff(1)})`)
      t.ok(rowDiff(2) > 0.1 && rowDiff(3) > 1e-3, `rows 2 and 3 change (${rowDiff(2)}, ${rowDiff(3)})`)
    })

    t.test("with one block, the edge columns see only their own pixel (Bolts' zero width padding after the 1.0 row)", async t => {
      const { z, params } = setup(2, 5, 1, [1, 2, 4, 5], 41)
      const base = run(z, params, 1)
      const moved = { shape: z.shape, data: z.data.slice() }
      for (let c = 0; c < 2; c++) for (let y = 0; y < 4; y++) for (const x of [1, 2, 3]) moved.data[(c * 4 + y) * 5 + x] += 1
      const out = run(moved, params, 1)
      let edge = 0
      let inner = 0
      for (let c = 0; c < 2; c++) {
        for (let y = 0; y < 4; y++) {
          for (const x of [0, 4]) edge = Math.max(edge, Math.abs(out[(c * 4 + y) * 5 + x] - base[(c * 4 + y) * 5 + x]))
          for (const x of [1, 2, 3]) inner = Math.max(inner, Math.abs(out[(c * 4 + y) * 5 + x] - base[(c * 4 + y) * 5 + x]))
        }
      }
      t.ok(edge <= 1e-6, `columns 0 and w-1 unchanged (${edge})`)
      t.ok(inner > 0.1, `the inner columns change (${inner})`)
    })
  })
}
