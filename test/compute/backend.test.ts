// Backend selection (src/compute/backend.ts): each installed backend activates and computes a
// gradient; a backend that is not installed is a clear error naming it and the way to get it;
// CI must have every backend the fixtures run on.
import t from 'tap'
import * as tf from '@tensorflow/tfjs'
import { BackendUnavailableError, initBackend, installedBackends } from '../../src/compute/backend.ts'
import { missingBackends, requireAllBackends, TEST_BACKENDS } from '../helpers/backends.ts'

t.test('the backends the suites run on', async t => {
  const missing = missingBackends()
  if (missing.length === 0) t.pass(`every backend is installed: ${TEST_BACKENDS.join(', ')}`)
  else if (requireAllBackends()) t.fail(`backends missing in CI: ${missing.join(', ')} (npm run setup:tensorflow builds tensorflow)`)
  else t.comment(`NOTE: backends not installed here, their cases do not run: ${missing.join(', ')} (npm run setup:tensorflow builds tensorflow)`)
})

for (const name of TEST_BACKENDS) {
  t.test(`${name}: activates and differentiates a convolution`, async t => {
    const info = await initBackend(name)
    t.equal(info.backend, name)
    t.equal(tf.getBackend(), name === 'tensorflow' ? 'tensorflow' : name)
    const before = tf.memory().numTensors
    // d/dx sum(conv2d(x, ones 3x3x4x2, 'same')) on 5x5x4: 4 * 2 * 13 * 13 (see setup-tensorflow.mjs)
    const sum = tf.tidy(() => tf.grad((x: tf.Tensor) => tf.conv2d(x as tf.Tensor4D, tf.ones([3, 3, 4, 2]) as tf.Tensor4D, 1, 'same').sum())(tf.ones([1, 5, 5, 4])).sum().dataSync()[0])
    t.equal(sum, 1352)
    t.equal(tf.memory().numTensors, before, 'no tensor left behind')
  })
}

t.test('asking for a backend that is not installed is a clear error', async t => {
  if (installedBackends().includes('tensorflow-gpu')) {
    t.comment('tensorflow-gpu is built here; nothing to refuse')
    return
  }
  const err = await initBackend('tensorflow-gpu').then(() => undefined, (e: unknown) => e)
  t.ok(err instanceof BackendUnavailableError, 'BackendUnavailableError')
  t.match((err as Error).message, /backend 'tensorflow-gpu' is not available: @tensorflow\/tfjs-node-gpu has no native addon/)
})

t.test('auto prefers tensorflow when its addon is built, else wasm', async t => {
  const info = await initBackend('auto')
  t.equal(info.requested, 'auto')
  t.equal(info.backend, installedBackends().includes('tensorflow') ? 'tensorflow' : 'wasm')
})
