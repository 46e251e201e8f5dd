// API keys (server/plugins/auth.ts): every /v1 route and the WebSocket upgrade need a
// valid Bearer key (401 with WWW-Authenticate otherwise); instances belong to the key that
// made them and are 404 to every other key, over HTTP and over the stream; health stays
// open, metrics as configured; keys never appear in the printed config.
import t from 'tap'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import WebSocket from 'ws'
import { describeConfig, loadConfig, makeConfig, ConfigError } from '../../src/config.ts'
import { authenticate } from '../../server/plugins/auth.ts'
import { decode, encode } from '../../src/wire/msgpack.ts'
import { testServer, until } from '../helpers/server.ts'

const A = 'key-A-0123456789abcdef'
const B = 'key-B-0123456789abcdef'
const bearer = (k: string): Record<string, string> => ({ authorization: `Bearer ${k}` })
const Z = { dtype: 'float32', shape: [1, 2, 3, 3], data: Array.from({ length: 18 }, (_, i) => Math.sin(i)) }
const CONFIG = { num_input_channels: 2, target_dim: 4, hidden_channels: 4, num_blocks: 1 }

function tmpDir (t: { teardown (fn: () => void): void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-auth-'))
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
  return dir
}

/** A WebSocket to /v1/stream: the upgrade's status when refused, or the open socket. */
function connect (url: string, headers: Record<string, string>): Promise<{ status: number, ws?: WebSocket }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url.replace(/^http/, 'ws') + '/v1/stream', { headers })
    ws.once('open', () => resolve({ status: 101, ws }))
    ws.once('unexpected-response', (_req, res) => { resolve({ status: res.statusCode ?? 0 }); res.resume() })
    ws.once('error', err => reject(err))
  })
}

async function frame (ws: WebSocket, msg: object): Promise<any> {
  const answers: any[] = []
  ws.on('message', (d: Buffer) => answers.push(decode(d)))
  ws.send(encode(msg))
  await until(() => answers.length > 0, 'a stream answer')
  return answers[0]
}

t.test('keys: 401 without or with a wrong key, open health, ownership by key', async t => {
  const { app, url } = await testServer(t, { dataDir: tmpDir(t), apiKeys: [A, B], listen: true })
  for (const headers of [{}, bearer('key-C-0123456789abcdef'), { authorization: A }, { authorization: `Basic ${A}` }, bearer(A.slice(0, -1))]) {
    for (const [method, u] of [['GET', '/v1/tasks'], ['POST', '/v1/loss/nt-xent'], ['POST', '/v1/tasks']] as const) {
      const res = await app.inject({ method, url: u, headers, ...(method === 'POST' ? { payload: {} } : {}) })
      t.equal(res.statusCode, 401, `${method} ${u} with ${JSON.stringify(headers)}`)
      t.equal(JSON.parse(res.body).error.code, 'unauthorized')
      t.equal(res.headers['www-authenticate'], 'Bearer realm="ssl-loss-server"')
    }
  }
  t.equal((await app.inject({ method: 'GET', url: '/health/live' })).statusCode, 200, 'health stays open')
  t.equal((await app.inject({ method: 'GET', url: '/metrics' })).statusCode, 200, 'metrics open unless --metrics-auth')
  const stateless = await app.inject({ method: 'POST', url: '/v1/loss/nt-xent', headers: bearer(B), payload: { inputs: { out_1: { dtype: 'float32', shape: [2, 2], data: [1, 2, 3, 4] }, out_2: { dtype: 'float32', shape: [2, 2], data: [4, 3, 2, 1] } } } })
  t.equal(stateless.statusCode, 200, 'a valid key passes')

  const made = await app.inject({ method: 'POST', url: '/v1/tasks', headers: bearer(A), payload: { kind: 'cpc', config: CONFIG, optimizer: { name: 'sgd' } } })
  t.equal(made.statusCode, 201)
  const id = JSON.parse(made.body).id
  const checks: Array<[string, string, object | undefined]> = [
    ['GET', `/v1/tasks/${id}`, undefined],
    ['POST', `/v1/tasks/${id}/loss`, { inputs: { z: Z } }],
    ['GET', `/v1/tasks/${id}/state`, undefined],
    ['DELETE', `/v1/tasks/${id}`, undefined]
  ]
  for (const [method, u, payload] of checks) {
    const other = await app.inject({ method: method as 'GET', url: u, headers: bearer(B), ...(payload ? { payload } : {}) })
    t.equal(other.statusCode, 404, `${method} ${u} with another key`)
    t.equal(JSON.parse(other.body).error.code, 'unknown_task')
  }
  const put = await app.inject({ method: 'PUT', url: `/v1/tasks/${id}/state`, headers: { ...bearer(B), 'content-type': 'application/octet-stream' }, payload: Buffer.alloc(16) })
  t.equal(put.statusCode, 404, 'PUT state with another key')
  t.same(JSON.parse((await app.inject({ method: 'GET', url: '/v1/tasks', headers: bearer(B) })).body).tasks, [], 'invisible in the other key\'s list')
  t.equal(JSON.parse((await app.inject({ method: 'GET', url: '/v1/tasks', headers: bearer(A) })).body).tasks.length, 1)
  const own = await app.inject({ method: 'POST', url: `/v1/tasks/${id}/loss`, headers: bearer(A), payload: { inputs: { z: Z } } })
  t.equal(own.statusCode, 200)
  t.equal(JSON.parse(own.body).step, 1, 'the other key\'s attempts changed nothing')

  // the WebSocket upgrade needs a key too; task frames see only the key's instances
  t.equal((await connect(url, {})).status, 401, 'upgrade without a key')
  t.equal((await connect(url, bearer('key-C-0123456789abcdef'))).status, 401, 'upgrade with a wrong key')
  const asB = await connect(url, bearer(B))
  t.equal(asB.status, 101)
  const refused = await frame(asB.ws!, { id: 1, task: id, inputs: { z: { ...Z, data: new Uint8Array(Float32Array.from(Z.data).buffer) } } })
  t.equal(refused.error?.code, 'unknown_task', 'another key\'s instance over the stream')
  asB.ws!.close()
  const asA = await connect(url, bearer(A))
  const ok = await frame(asA.ws!, { id: 2, task: id, inputs: { z: { ...Z, data: new Uint8Array(Float32Array.from(Z.data).buffer) } } })
  t.equal(ok.ok, true, JSON.stringify(ok.error))
  t.equal(ok.result.step, 2)
  asA.ws!.close()
})

t.test('--metrics-auth puts /metrics behind the keys', async t => {
  const { app } = await testServer(t, { dataDir: tmpDir(t), apiKeys: [A], metricsAuth: true })
  t.equal((await app.inject({ method: 'GET', url: '/metrics' })).statusCode, 401)
  t.equal((await app.inject({ method: 'GET', url: '/metrics', headers: bearer(A) })).statusCode, 200)
  t.equal((await app.inject({ method: 'GET', url: '/health/ready' })).statusCode, 200)
})

t.test('config: keys from a list or a file, masked in the printed config, short keys refused', async t => {
  const dir = tmpDir(t)
  const file = path.join(dir, 'keys')
  fs.writeFileSync(file, `# operators\n${A}\n\n${B}\n`)
  t.same(loadConfig(['--api-keys', `@${file}`], {}).apiKeys, [A, B])
  t.same(loadConfig([], { API_KEYS: `${A}, ${B}` }).apiKeys, [A, B])
  t.same(loadConfig([], {}).apiKeys, [])
  t.throws(() => loadConfig(['--api-keys', '@/nonexistent/keys'], {}), ConfigError)
  try {
    makeConfig({ apiKeys: ['short'] })
    t.fail('a short key is refused')
  } catch (err) {
    t.ok(err instanceof ConfigError)
    t.notMatch((err as Error).message, /short'/, 'the key is not echoed')
  }
  const printed = JSON.stringify(describeConfig(makeConfig({ apiKeys: [A, B] })))
  t.notOk(printed.includes(A) || printed.includes(B), 'keys never printed')
  t.match(printed, /2 key\(s\)/)
  const c = loadConfig(['--metrics-auth', '--data-dir', dir, '--checkpoint-every', '5', '--max-instances', '7', '--max-instance-bytes', '64MiB'], {})
  t.same([c.metricsAuth, c.dataDir, c.checkpointEvery, c.maxInstances, c.maxInstanceBytes], [true, dir, 5, 7, 64 * 1024 * 1024])
  const d = makeConfig()
  t.same([d.dataDir, d.checkpointEvery, d.metricsAuth, d.maxInstances, d.maxInstanceBytes], ['./data', 1, false, 1000, 1024 ** 3], 'defaults')
})

t.test('authenticate: compares digests of every key, matches only the exact key', async t => {
  const { createHash } = await import('node:crypto')
  const digests = [A, B].map(k => createHash('sha256').update(k).digest())
  t.ok(authenticate(`Bearer ${B}`, digests)?.equals(digests[1]))
  t.ok(authenticate(`bearer   ${A}  `, digests)?.equals(digests[0]), 'scheme is case-insensitive (RFC 7235)')
  for (const h of [undefined, '', 'Bearer', `Bearer ${A} extra`, `Bearer ${A}x`, `Token ${A}`]) t.equal(authenticate(h, digests), undefined, JSON.stringify(h))
})
