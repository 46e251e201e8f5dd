// API keys never appear in the log: the real entry (server/start.ts) at --log-level trace
// with two keys, asked with the right key, a wrong one, none, over HTTP and the WebSocket
// upgrade, then stopped; its whole stdout and stderr must not contain any of the keys.
import t from 'tap'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import WebSocket from 'ws'
import { encode } from '../../src/wire/msgpack.ts'
import { startRealServer } from '../helpers/server.ts'

const KEYS = ['key-AAAA-0123456789abcdef', 'key-BBBB-fedcba9876543210']
const WRONG = 'key-CCCC-not-a-configured-one'

t.test('API keys are never logged, right or wrong, at trace level', { timeout: 180_000 }, async t => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-loss-keys-'))
  t.teardown(() => fs.rmSync(dataDir, { recursive: true, force: true }))
  const { child, url, log, exited } = await startRealServer(t, ['--log-level', 'trace', '--data-dir', dataDir, '--api-keys', KEYS.join(',')])

  const f32 = new Uint8Array(Float32Array.from([1, 2, 3, 4]).buffer)
  const body = encode({ inputs: { out_1: { dtype: 'float32', shape: [2, 2], data: f32 }, out_2: { dtype: 'float32', shape: [2, 2], data: f32 } } })
  const post = (auth?: string) => fetch(`${url}/v1/loss/nt-xent`, { method: 'POST', headers: { 'content-type': 'application/msgpack', ...(auth ? { authorization: auth } : {}) }, body: new Uint8Array(body) })
  t.equal((await post(`Bearer ${KEYS[0]}`)).status, 200)
  t.equal((await post(`Bearer ${KEYS[1]}`)).status, 200)
  t.equal((await post(`Bearer ${WRONG}`)).status, 401)
  t.equal((await post(WRONG)).status, 401, 'a malformed header')
  t.equal((await post()).status, 401)
  t.equal((await fetch(`${url}/v1/tasks`, { headers: { authorization: `Bearer ${WRONG}` } })).status, 401)
  for (const key of [KEYS[0], WRONG]) {
    const ws = new WebSocket(url.replace(/^http/, 'ws') + '/v1/stream', { headers: { authorization: `Bearer ${key}` } })
    const opened = await new Promise<boolean>(resolve => { ws.once('open', () => resolve(true)); ws.once('error', () => resolve(false)); ws.once('unexpected-response', () => resolve(false)) })
    t.equal(opened, key === KEYS[0], `WebSocket upgrade with ${key === WRONG ? 'a wrong' : 'the right'} key`)
    ws.terminate()
  }
  child.kill('SIGTERM')
  t.equal(await exited, 0)
  t.ok(log().length > 1000, `the log has content (${log().length} bytes)`)
  t.match(log(), /incoming request/, 'requests were logged')
  for (const secret of [...KEYS, WRONG]) t.notOk(log().includes(secret), `the log never contains ${secret.slice(0, 8)}...`)
  // the secret part alone either
  for (const secret of [...KEYS, WRONG]) t.notOk(log().includes(secret.slice(9)), 'nor its tail')
})
