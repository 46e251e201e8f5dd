// Load and soak: npm run load -- --duration 300 [--http 24] [--ws 4] [--ws-in-flight 8]
//   [--workers 2] [--queue-size 8] [--backend wasm] [--max-requests N] [--instances 2]
// Starts the real server (server/start.ts) on a loopback port, drives it above the pool's
// capacity (workers + queue) with a mix of kinds over HTTP keep-alive (node:http) and
// pipelined WebSocket streams (ws), for a bounded time and count, then stops it with SIGTERM.
// The mix includes updating steps of --instances cpc task instances (POST /v1/tasks/{id}/loss
// and stream `task` frames, each checkpointed before it is answered, in a fresh data
// directory): afterwards each instance's step, in memory and in its checkpoint file, must equal
// the number of its steps answered 200 (none lost, none applied twice).
// Reports: answers by status (only 200 and 429 are expected), latency p50/p90/p99/max of the
// 200s, throughput, and the server's RSS, live tensors, open connections and file
// descriptors (/proc/<pid>) sampled over the run: flat is the goal, and the descriptors after
// the clients have gone must equal those before they came. Exit status 1 on any other answer
// or a descriptor leak.
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import http from 'node:http'
import net from 'node:net'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import WebSocket from 'ws'
import { encode, decode } from '../src/wire/msgpack.ts'
import { initParams } from '../src/tasks/cpc-params.ts'
import { readSafetensors } from '../src/store/safetensors.ts'
import os from 'node:os'

const { values: v } = parseArgs({
  options: {
    duration: { type: 'string', default: '60' },
    http: { type: 'string', default: '24' },
    ws: { type: 'string', default: '4' },
    'ws-in-flight': { type: 'string', default: '8' },
    workers: { type: 'string', default: '2' },
    'queue-size': { type: 'string', default: '8' },
    backend: { type: 'string', default: 'wasm' },
    'max-requests': { type: 'string', default: String(Number.MAX_SAFE_INTEGER) },
    'sample-every': { type: 'string', default: '5' },
    instances: { type: 'string', default: '2' }
  }
})
const durationS = Number(v.duration)
const maxRequests = Number(v['max-requests'])
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')

// ---- the workload: small but real evaluations of every kind ---------------------------------

const f32 = (n: number, seed: number): Uint8Array => new Uint8Array(Float32Array.from({ length: n }, (_, i) => Math.sin(seed * 7.31 + i) * 0.5).buffer)
const t = (shape: number[], seed: number): Record<string, unknown> => ({ dtype: 'float32', shape, data: f32(shape.reduce((a, b) => a * b, 1), seed) })
const cpcConfig = { num_input_channels: 8, target_dim: 8, hidden_channels: 8, num_blocks: 1 }
const cpcParams = Object.fromEntries(Object.entries(initParams(cpcConfig, 7)).map(([k, p]) => [k, { dtype: 'float32', shape: p.shape, data: new Uint8Array(p.data.buffer) }]))
const BODIES: Array<{ kind: string, body: Record<string, unknown> }> = [
  { kind: 'nt-xent', body: { inputs: { out_1: t([32, 64], 1), out_2: t([32, 64], 2) } } },
  { kind: 'amdim-nce', body: { inputs: { anchor: t([16, 32], 3), positive: t([32, 16 * 4], 4) } } },
  { kind: 'feature-map-contrastive', body: { inputs: { anchor: [t([8, 16, 4, 4], 5), t([8, 16, 2, 2], 6)], positive: [t([8, 16, 4, 4], 7), t([8, 16, 2, 2], 8)] } } },
  { kind: 'cpc', body: { config: cpcConfig, inputs: { z: t([4, 8, 5, 5], 9) }, params: cpcParams } }
]
/** an updating step of a task instance: the instance holds config, parameters and optimizer */
const STEP_BODY = { inputs: { z: t([4, 8, 5, 5], 10) }, options: { gradients: false } }
const STEP_BYTES = encode(STEP_BODY)
/** instance ids, made once the server is up; the clients rotate through BODIES and them */
const instances: string[] = []
const stepsAcked = new Map<string, number>()
const ackStep = (id: string): void => { stepsAcked.set(id, (stepsAcked.get(id) ?? 0) + 1) }
const HTTP_BODIES = BODIES.map(b => ({ kind: b.kind, bytes: encode(b.body) }))
/** the k-th request of a client: an evaluation of each kind, then a step of one instance */
const nth = (k: number): { kind: string, task?: string } => {
  const n = BODIES.length + (instances.length ? 1 : 0)
  const i = k % n
  return i < BODIES.length ? { kind: BODIES[i].kind } : { kind: 'task', task: instances[Math.floor(k / n) % instances.length] }
}

// ---- measurements ----------------------------------------------------------------------------

const statuses: Record<string, number> = {}
const count = (key: string): void => { statuses[key] = (statuses[key] ?? 0) + 1 }
let latencies = new Float64Array(1 << 16)
let nLat = 0
const record = (ms: number): void => {
  if (nLat === latencies.length) { const l = new Float64Array(latencies.length * 2); l.set(latencies); latencies = l }
  latencies[nLat++] = ms
}
let sent = 0
let stopping = false
const more = (): boolean => !stopping && sent < maxRequests

function proc (pid: number): { rssMiB: number, fds: number, threads: number } {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8')
  return {
    rssMiB: Math.round(Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024),
    threads: Number(/Threads:\s+(\d+)/.exec(status)?.[1] ?? 0),
    fds: fs.readdirSync(`/proc/${pid}/fd`).length
  }
}

/** A GET on a connection of its own that closes after the answer (no keep-alive socket of ours to count). */
function get (url: string): Promise<{ status: number, body: string }> {
  return new Promise((resolve, reject) => {
    http.get(url, { agent: false, headers: { connection: 'close' } }, res => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', d => { body += d })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
    }).on('error', reject)
  })
}

/** A JSON POST on a connection of its own, as get(). */
function post (url: string, body: unknown): Promise<{ status: number, body: string }> {
  return new Promise((resolve, reject) => {
    const text = JSON.stringify(body)
    const req = http.request(url, { method: 'POST', agent: false, headers: { connection: 'close', 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) } }, res => {
      let out = ''
      res.setEncoding('utf8')
      res.on('data', d => { out += d })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: out }))
    })
    req.on('error', reject)
    req.end(text)
  })
}

async function metrics (base: string): Promise<{ liveTensors: number[], openConnections: number }> {
  const text = (await get(`${base}/metrics`)).body
  const liveTensors = [...text.matchAll(/^ssl_loss_worker_live_tensors\{worker="(\d+)"\} (\d+)/gm)].sort((a, b) => Number(a[1]) - Number(b[1])).map(m => Number(m[2]))
  // this request's own connection is one of them
  const openConnections = Number(/^ssl_loss_open_connections (\d+)/m.exec(text)?.[1] ?? 0) - 1
  return { liveTensors, openConnections }
}

// ---- clients -------------------------------------------------------------------------------

const sleep = (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms))

async function httpClient (agent: http.Agent, port: number, i: number): Promise<void> {
  let k = i
  while (more()) {
    const { kind, task } = nth(k++)
    const bytes = task ? STEP_BYTES : HTTP_BODIES.find(b => b.kind === kind)!.bytes
    sent++
    const t0 = performance.now()
    const status = await new Promise<number>(resolve => {
      const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: task ? `/v1/tasks/${task}/loss` : `/v1/loss/${kind}`, agent, headers: { 'content-type': 'application/msgpack', 'content-length': bytes.length } }, res => {
        res.on('data', () => {})
        res.on('end', () => resolve(res.statusCode ?? 0))
        res.on('error', () => resolve(-1))
      })
      req.on('error', () => resolve(-1))
      req.end(bytes)
    })
    count(`${task ? 'http-task' : 'http'} ${status}`)
    if (status === 200 && task) ackStep(task)
    if (status === 200) record(performance.now() - t0)
    // a client that is told 429 waits a moment, as Retry-After asks (shortened so the run stays above capacity)
    else await sleep(10 + Math.random() * 40)
  }
}

async function wsClient (base: string, inFlight: number, i: number): Promise<void> {
  const ws = new WebSocket(base.replace(/^http/, 'ws') + '/v1/stream', { perMessageDeflate: false })
  await new Promise<void>((resolve, reject) => { ws.once('open', () => resolve()); ws.once('error', reject) })
  const started = new Map<number, number>()
  const tasks = new Map<number, string>()
  let id = i * 1_000_000_000
  let done: () => void
  const finished = new Promise<void>(resolve => { done = resolve })
  const sendOne = (): void => {
    if (!more()) { if (started.size === 0) done(); return }
    const { kind, task } = nth(id)
    started.set(++id, performance.now())
    sent++
    if (task) {
      tasks.set(id, task)
      ws.send(encode({ id, task, ...STEP_BODY }))
    } else {
      ws.send(encode({ id, kind, ...BODIES.find(b => b.kind === kind)!.body }))
    }
  }
  ws.on('message', (data: Buffer) => {
    const a = decode(data) as { id: number, ok: boolean, error?: { code: string } }
    const t0 = started.get(a.id)
    started.delete(a.id)
    const task = tasks.get(a.id)
    tasks.delete(a.id)
    const label = task ? 'ws-task' : 'ws'
    if (a.ok && task) ackStep(task)
    if (a.ok) { count(`${label} 200`); if (t0 !== undefined) record(performance.now() - t0) } else count(`${label} ${a.error?.code === 'overloaded' ? 429 : a.error?.code}`)
    if (a.ok) sendOne()
    else setTimeout(sendOne, 10 + Math.random() * 40)
  })
  ws.on('close', () => done())
  for (let k = 0; k < inFlight; k++) sendOne()
  await finished
  ws.close()
  await new Promise(resolve => { if (ws.readyState === WebSocket.CLOSED) resolve(null); else ws.once('close', resolve) })
}

// ---- the run --------------------------------------------------------------------------------

async function freePort (): Promise<number> {
  const s = net.createServer()
  await new Promise<void>(resolve => s.listen(0, '127.0.0.1', () => resolve()))
  const port = (s.address() as net.AddressInfo).port
  await new Promise(resolve => s.close(resolve))
  return port
}

const port = await freePort()
const base = `http://127.0.0.1:${port}`
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-load-'))
const server = spawn(process.execPath, ['--import', 'tsx', 'server/start.ts', '--backend', v.backend!, '--workers', v.workers!, '--queue-size', v['queue-size']!, '--port', String(port), '--log-level', 'warn', '--data-dir', dataDir], { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] })
const exited = new Promise<number | null>(resolve => server.on('exit', code => resolve(code)))
process.on('exit', () => { if (server.exitCode === null) server.kill('SIGKILL'); fs.rmSync(dataDir, { recursive: true, force: true }) })
for (let i = 0; ; i++) {
  const ok = await get(`${base}/health/ready`).then(r => r.status === 200, () => false)
  if (ok) break
  if (i > 600) throw new Error('the server did not become ready in 120 s')
  await sleep(200)
}
const pid = server.pid!
for (let i = 0; i < Number(v.instances); i++) {
  const made = await post(`${base}/v1/tasks`, { kind: 'cpc', config: cpcConfig, seed: i, optimizer: { name: 'adam', lr: 0.001 } })
  if (made.status !== 201) throw new Error(`creating instance ${i}: ${made.status} ${made.body}`)
  instances.push(JSON.parse(made.body).id)
}
await sleep(500) // the readiness polls' sockets close
const idle = { ...proc(pid), ...(await metrics(base)) }
const capacity = Number(v.workers) + Number(v['queue-size'])
const concurrency = Number(v.http) + Number(v.ws) * Number(v['ws-in-flight'])
console.log(`load: ${durationS} s, ${v.http} HTTP clients + ${v.ws} WebSockets x ${v['ws-in-flight']} in flight = ${concurrency} concurrent, against ${v.workers} ${v.backend} workers + queue ${v['queue-size']} = capacity ${capacity}; server pid ${pid}`)
console.log(`idle:  RSS ${idle.rssMiB} MiB, fds ${idle.fds}, threads ${idle.threads}, live tensors ${idle.liveTensors.join(',')}`)

const agent = new http.Agent({ keepAlive: true, maxSockets: Number(v.http) })
const t0 = performance.now()
const samples: Array<{ s: number, rssMiB: number, fds: number, liveTensors: number[], openConnections: number, answered: number }> = []
const sampler = setInterval(() => {
  void metrics(base).then(m => {
    const p = proc(pid)
    const s = { s: Math.round((performance.now() - t0) / 1000), rssMiB: p.rssMiB, fds: p.fds, ...m, answered: Object.values(statuses).reduce((a, b) => a + b, 0) }
    samples.push(s)
    console.log(`  t=${s.s}s answered ${s.answered} (${JSON.stringify(statuses)}) RSS ${s.rssMiB} MiB fds ${s.fds} open connections ${s.openConnections} live tensors ${s.liveTensors.join(',')}`)
  }, () => {})
}, Number(v['sample-every']) * 1000)
const stopTimer = setTimeout(() => { stopping = true }, durationS * 1000)

await Promise.all([
  ...Array.from({ length: Number(v.http) }, (_, i) => httpClient(agent, port, i)),
  ...Array.from({ length: Number(v.ws) }, (_, i) => wsClient(base, Number(v['ws-in-flight']), i + 1))
])
const elapsed = (performance.now() - t0) / 1000
clearInterval(sampler)
clearTimeout(stopTimer)
agent.destroy()
// let the server see the sockets close before counting its descriptors
let after = { ...proc(pid), ...(await metrics(base)) }
for (let i = 0; i < 50 && after.fds > idle.fds; i++) { await sleep(100); after = { ...proc(pid), ...(await metrics(base)) } }

// every acknowledged step applied exactly once, in memory and on disk
const stepProblems: string[] = []
const stepReport: string[] = []
for (const id of instances) {
  const info = JSON.parse((await get(`${base}/v1/tasks/${id}`)).body)
  const onDisk = Number(readSafetensors(fs.readFileSync(path.join(dataDir, `${id}.safetensors`))).metadata.step)
  const acked = stepsAcked.get(id) ?? 0
  stepReport.push(`${id}: ${acked} acked, step ${info.step}, on disk ${onDisk}`)
  if (info.step !== acked || onDisk !== acked) stepProblems.push(`${id}: ${acked} steps answered 200, the instance is at step ${info.step}, its checkpoint at ${onDisk}`)
}

server.kill('SIGTERM')
const exitCode = await exited

const sorted = latencies.subarray(0, nLat).sort()
const q = (p: number): string => (nLat ? sorted[Math.min(nLat - 1, Math.floor(p * nLat))].toFixed(1) : '-')
const total = Object.values(statuses).reduce((a, b) => a + b, 0)
const ok = Object.entries(statuses).filter(([k]) => k.endsWith(' 200')).reduce((a, [, n]) => a + n, 0)
const unexpected = Object.entries(statuses).filter(([k]) => !/ (200|429)$/.test(k))
const warm = samples[Math.min(1, samples.length - 1)] ?? after
const last = samples[samples.length - 1] ?? after
const maxRss = Math.max(...samples.map(s => s.rssMiB), after.rssMiB)
console.log(`\nanswers: ${total} in ${elapsed.toFixed(1)} s: ${JSON.stringify(statuses)}`)
console.log(`throughput: ${(total / elapsed).toFixed(1)} answers/s, ${(ok / elapsed).toFixed(1)} evaluations/s (200)`)
console.log(`latency of 200s (ms): p50 ${q(0.5)}  p90 ${q(0.9)}  p99 ${q(0.99)}  max ${nLat ? sorted[nLat - 1].toFixed(1) : '-'}`)
console.log(`RSS (MiB): idle ${idle.rssMiB}, first sample ${warm.rssMiB}, last sample ${last.rssMiB}, max ${maxRss}, after ${after.rssMiB}`)
console.log(`live tensors per worker: idle ${idle.liveTensors.join(',')}, first sample ${warm.liveTensors.join(',')}, last sample ${last.liveTensors.join(',')}, after ${after.liveTensors.join(',')}`)
console.log(`file descriptors: idle ${idle.fds}, max during ${Math.max(...samples.map(s => s.fds), 0)}, after the clients left ${after.fds}; open connections after ${after.openConnections}`)
console.log(`task instances: ${stepReport.join('; ') || 'none'}`)
console.log(`server exit after SIGTERM: ${exitCode}`)
const leak = after.fds !== idle.fds
const tensorsGrew = after.liveTensors.join() !== idle.liveTensors.join()
if (unexpected.length) console.log(`UNEXPECTED answers: ${JSON.stringify(Object.fromEntries(unexpected))}`)
if (leak) console.log('FILE DESCRIPTORS LEAKED')
if (tensorsGrew) console.log('LIVE TENSORS GREW')
for (const p of stepProblems) console.log(`STEPS LOST OR REPEATED: ${p}`)
const pass = !unexpected.length && !leak && !tensorsGrew && exitCode === 0 && stepProblems.length === 0
console.log(pass ? 'OK' : 'FAILED')
process.exit(pass ? 0 : 1)
