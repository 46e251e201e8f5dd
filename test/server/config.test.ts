// src/config.ts: flags over env over defaults, parsed once, frozen, and a bad value fails at
// start with a message that names the flag and the value.
import t from 'tap'
import { ConfigError, loadConfig, makeConfig } from '../../src/config.ts'

t.test('defaults', async t => {
  const c = loadConfig([], {})
  t.equal(c.host, '127.0.0.1')
  t.equal(c.port, 8080)
  t.equal(c.backend, 'auto')
  t.equal(c.workers, undefined, 'one per core (or per GPU), decided by the placement')
  t.ok(c.cores >= 1)
  t.equal(c.queueSize, 64)
  t.equal(c.bodyLimit, 256 * 1024 * 1024)
  t.equal(c.maxElements, 2 ** 28)
  t.equal(c.requestTimeoutMs, 120_000)
  t.equal(c.logLevel, 'info')
  t.ok(Object.isFrozen(c))
})

t.test('flags win over the environment; units and seconds are understood', async t => {
  const c = loadConfig(['--port', '9000', '--body-limit', '1MiB', '--request-timeout', '2.5', '--backend', 'wasm'],
    { PORT: '7000', HOST: '0.0.0.0', WORKERS: '3', QUEUE_SIZE: '5', WS_MAX_PAYLOAD: '64k', MAX_IN_FLIGHT_PER_CONNECTION: '4', CUDA_VISIBLE_DEVICES: '1,3' })
  t.same([c.port, c.host, c.workers, c.queueSize, c.bodyLimit, c.requestTimeoutMs, c.backend, c.wsMaxPayload, c.maxInFlightPerConnection],
    [9000, '0.0.0.0', 3, 5, 1024 * 1024, 2500, 'wasm', 64 * 1024, 4])
  t.same(c.gpuDevices, ['1', '3'])
})

t.test('bad values fail fast naming the flag and the value', async t => {
  t.throws(() => loadConfig(['--port', 'eighty'], {}), { name: 'ConfigError', message: /--port.*eighty/ })
  t.throws(() => loadConfig([], { BACKEND: 'gpu' }), { message: /--backend \(BACKEND\).*gpu/ })
  t.throws(() => loadConfig(['--body-limit', 'lots'], {}), { message: /lots.*byte size/ })
  t.throws(() => loadConfig(['--wokers', '2'], {}), ConfigError)
  t.throws(() => makeConfig({ workers: 0 }), { message: /--workers/ })
})
