// tanh_clip and the accurate softplus used by the contrastive kinds, on every backend: values
// against float64 JS, gradients, edge cases, memory.
import t from 'tap'
import * as tf from '@tensorflow/tfjs'
import { initBackend } from '../../src/compute/backend.ts'
import { softplus } from '../../src/tasks/softplus.ts'
import { tanhClip, tanhClipScalar } from '../../src/tasks/tanh-clip.ts'
import { TEST_BACKENDS } from '../helpers/backends.ts'

const XS = [-1e4, -37, -10, -2.5, -0.3, 0, 1e-7, 0.3, 2.5, 10, 37, 1e4].map(Math.fround)
const close = (a: number, b: number, rel: number, abs = 0): boolean => Math.abs(a - b) <= rel * Math.abs(b) + abs

for (const backend of TEST_BACKENDS) {
  t.test(`tanh_clip on ${backend}`, async t => {
    await initBackend(backend)
    const before = tf.memory().numTensors
    for (const clip of [10, 0.5]) {
      const y = tf.tidy(() => tanhClip(tf.tensor1d(XS), clip).dataSync())
      const bad = XS.filter((x, i) => !close(y[i], tanhClipScalar(x, clip), 1e-6, 1e-12))
      t.same(bad, [], `t = ${clip}: t * tanh(x / t) to float32 rounding`)
      t.ok(y.every(v => Math.abs(v) <= clip), `t = ${clip}: every value within [-t, t]`)
      const g = tf.tidy(() => tf.grad((x: tf.Tensor) => tf.sum(tanhClip(x, clip)))(tf.tensor1d(XS)).dataSync())
      const badG = XS.filter((x, i) => !close(g[i], 1 - Math.tanh(x / clip) ** 2, 1e-5, 1e-7))
      t.same(badG, [], `t = ${clip}: gradient 1 - tanh²(x / t)`)
    }
    const x = tf.tensor1d(XS)
    t.equal(tanhClip(x, null), x, 'null: identity (the same tensor, no copy)')
    x.dispose()
    const one = tf.scalar(1)
    t.throws(() => tanhClip(one, 0), RangeError, 't = 0 is refused')
    one.dispose()
    t.equal(tanhClipScalar(3, null), 3, 'scalar form: null is identity')
    t.ok(close(tanhClipScalar(30, 10), 10 * Math.tanh(3), 1e-15), 'scalar form: t * tanh(x / t)')
    t.equal(tf.memory().numTensors, before, 'no tensors leak')
  })

  t.test(`softplus on ${backend}`, async t => {
    await initBackend(backend)
    const before = tf.memory().numTensors
    const ref = (x: number): number => Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(x)))
    const y = tf.tidy(() => softplus(tf.tensor1d(XS)).dataSync())
    const bad = XS.map((x, i) => [x, y[i], ref(x)]).filter(([, v, r]) => !close(v, r, 2e-6))
    t.same(bad, [], 'log(1 + e^x) to float32 relative precision, including e^x far below float32 epsilon')
    t.ok(y[1] > 0 && close(y[1], Math.exp(-37), 2e-6), `softplus(-37) = ${y[1]} keeps its value (log(1 + e^x) in float32 gives 0)`)
    const g = tf.tidy(() => tf.grad((x: tf.Tensor) => tf.sum(softplus(x)))(tf.tensor1d(XS)).dataSync())
    const badG = XS.map((x, i) => [x, g[i], 1 / (1 + Math.exp(-x))]).filter(([, v, r]) => !close(v, r, 1e-5, 1e-30))
    t.same(badG, [], 'gradient sigmoid(x), 1/2 at 0')
    t.equal(tf.memory().numTensors, before, 'no tensors leak')
  })
}
