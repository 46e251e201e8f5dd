// The pool's contracts (piscina-style): buffers move to and from workers instead of being
// copied (a test proves it: the sender's buffer is detached), only buffers a request owns
// move, a full queue refuses, a cancelled job leaves the queue, close finishes in-flight work.
import t from 'tap'
import { MessageChannel } from 'node:worker_threads'
import { prepare } from '../../src/compute/evaluate.ts'
import { WorkerPool, type JobRecord } from '../../src/pool/pool.ts'
import { placeWorkers } from '../../src/pool/placement.ts'
import { transferList } from '../../src/pool/transfer.ts'
import { BoundedQueue } from '../../src/pool/queue.ts'
import { profilingFlags } from '../../src/pool/worker-handle.ts'
import { LossServerError } from '../../src/errors.ts'
import type { HostTensor } from '../../src/tensor.ts'

const tensor = (b: number, d: number, seed: number, data = new Float32Array(b * d)): HostTensor => {
  for (let i = 0; i < b * d; i++) data[i] = Math.sin(seed * 31 + i) * 0.1
  return { shape: [b, d], data }
}
const ntXent = (out1: HostTensor, out2: HostTensor) => prepare('nt-xent', { inputs: { out_1: out1, out_2: out2 } })
const heavy = () => ntXent(tensor(256, 512, 1), tensor(256, 512, 2))

function makePool (queueSize: number): WorkerPool {
  const placement = placeWorkers({ backend: 'wasm', workers: 1, cores: 1, gpuDevices: [], baseEnv: {} })
  return new WorkerPool({ placement, queueSize, timeoutMs: 120_000 })
}

const pool = makePool(1)
t.teardown(() => pool.close())
await pool.ready()

t.test('inputs that own their buffers move to the worker (detached here)', async t => {
  const req = ntXent(tensor(4, 8, 1), tensor(4, 8, 2))
  const out1 = req.inputs.out_1 as HostTensor
  const { result, meta } = await pool.run(req)
  t.equal(out1.data.byteLength, 0, 'the sent buffer is detached: moved, not copied')
  t.equal(meta.backend, 'wasm')
  t.equal(meta.worker, 0)
  t.ok(Number.isFinite(result.loss))
  t.same((result.grads!.out_1 as HostTensor).shape, [4, 8])
  t.ok(result.grads!.out_1 instanceof Object && (result.grads!.out_1 as HostTensor).data instanceof Float32Array)
})

t.test('a view into a larger buffer is copied once, never detaching its neighbours', async t => {
  const slab = new Float32Array(64 + 1)
  const a = tensor(4, 8, 1, slab.subarray(1, 33))
  const b = tensor(4, 8, 2, slab.subarray(33, 65))
  const before = Array.from(slab)
  await pool.run(ntXent(a, b))
  t.equal(slab.byteLength, 65 * 4, 'the shared buffer is intact')
  t.same(Array.from(slab), before)
})

t.test('a buffer the request owns as a whole moves once for all its views', async t => {
  const body = new Float32Array(64)
  const req = ntXent(tensor(4, 8, 1, body.subarray(0, 32)), tensor(4, 8, 2, body.subarray(32)))
  await pool.run(req, { owned: new Set([body.buffer]) })
  t.equal(body.byteLength, 0, 'the owned body buffer moved')
})

t.test('results move back: the worker-side transfer list detaches the sender', async t => {
  const grads = { out_1: tensor(2, 3, 1), out_2: [tensor(2, 3, 2), { shape: [3], data: new Float32Array(8).subarray(2, 5) }] }
  const viewParent = (grads.out_2[1] as HostTensor).data.buffer
  const list = transferList([grads])
  const { port1, port2 } = new MessageChannel()
  const received = new Promise<any>(resolve => port2.once('message', resolve))
  const sent = grads.out_1.data
  port1.postMessage({ grads }, list)
  const got = await received
  port1.close()
  t.equal(sent.byteLength, 0, 'moved, not copied')
  t.equal(viewParent.byteLength, 32, 'a partial view was copied rather than detaching its parent')
  t.equal(got.grads.out_1.data.length, 6)
  t.same(Array.from(got.grads.out_2[1].data), [0, 0, 0])
})

t.test('a full queue refuses with overloaded; a cancelled job leaves the queue', async t => {
  const records: JobRecord[] = []
  pool.on('done', r => records.push(r))
  const running = pool.run(heavy())
  const cancel = new AbortController()
  const queued = pool.run(ntXent(tensor(4, 8, 1), tensor(4, 8, 2)), { signal: cancel.signal })
  t.equal(pool.queueDepth, 1)
  await t.rejects(pool.run(ntXent(tensor(4, 8, 1), tensor(4, 8, 2))), { code: 'overloaded' })
  cancel.abort()
  await t.rejects(queued, { code: 'unavailable' })
  t.equal(pool.queueDepth, 0, 'the cancelled job left the queue')
  await running
  t.same(records.map(r => r.outcome), ['cancelled', 'ok'])
})

t.test('a request error keeps its code and path across the boundary', async t => {
  const req = ntXent(tensor(4, 8, 1), tensor(4, 8, 2))
  req.kind = 'no-such-kind' as never
  const err = await pool.run(req).catch(e => e)
  t.ok(err instanceof LossServerError)
  t.equal(err.code, 'unknown_kind')
  t.same(err.path, ['kind'])
})

t.test('close lets in-flight work finish, then refuses', async t => {
  const p = makePool(4)
  await p.ready()
  const inFlight = p.run(heavy())
  const closing = p.close()
  await t.rejects(p.run(heavy()), { code: 'not_ready' })
  const { result } = await inFlight
  t.ok(Number.isFinite(result.loss), 'the in-flight job finished')
  await closing
  t.same(p.workers().map(w => w.state), ['stopped'])
})

t.test('compute threads inherit the profiling flags and nothing else', async t => {
  t.same(profilingFlags(['--import', 'tsx', '--cpu-prof', '--cpu-prof-dir=/tmp/p', '--heap-prof', '--enable-source-maps', '--cpu-prof-interval=100']),
    ['--cpu-prof', '--cpu-prof-dir=/tmp/p', '--heap-prof', '--cpu-prof-interval=100'])
  t.same(profilingFlags(['--cpu-prof-dir', '/tmp/p', '--cpu-prof-name=']), [], 'a value in the next argument, or an empty one, is not forwarded')
  t.same(profilingFlags([]), [])
})

t.test('the bounded queue', async t => {
  const q = new BoundedQueue<number>(2)
  t.ok(q.push(1))
  t.ok(q.push(2))
  t.notOk(q.push(3), 'full')
  t.ok(q.remove(1))
  t.notOk(q.remove(1))
  t.equal(q.shift(), 2)
  t.equal(q.length, 0)
})

t.test('placement: threads by default, one process per GPU for tensorflow-gpu', async t => {
  const cpu = placeWorkers({ backend: 'wasm', cores: 3, gpuDevices: [], baseEnv: {} })
  t.same([cpu.transport, cpu.workers], ['thread', 3])
  const gpu = placeWorkers({ backend: 'tensorflow-gpu', cores: 16, gpuDevices: ['2', '5'], baseEnv: { A: '1' } })
  t.same([gpu.transport, gpu.workers], ['process', 2])
  t.same(gpu.envOf!(1), { A: '1', CUDA_VISIBLE_DEVICES: '5', TF_FORCE_GPU_ALLOW_GROWTH: 'true' })
})

t.test('the child-process transport (as tensorflow-gpu uses): results, crash, replacement', async t => {
  const p = new WorkerPool({ placement: { backend: 'wasm', transport: 'process', workers: 1, envOf: () => ({ ...process.env, SSL_WORKER_MARK: '1' }) }, queueSize: 2, timeoutMs: 120_000 })
  t.teardown(() => p.close())
  await p.ready()
  const { result, meta } = await p.run(ntXent(tensor(4, 8, 1), tensor(4, 8, 2)))
  t.ok(Number.isFinite(result.loss))
  t.ok((result.grads!.out_1 as HostTensor).data instanceof Float32Array, 'typed arrays survive IPC (advanced serialization)')
  t.equal(meta.backend, 'wasm')
  const inFlight = p.run(heavy())
  p.terminateWorker(0) // the job went to the idle worker synchronously: it dies with it
  await t.rejects(inFlight, { code: 'worker_failed' })
  const again = await p.run(ntXent(tensor(4, 8, 1), tensor(4, 8, 2)))
  t.equal(again.result.loss, result.loss, 'the replacement computes the same')
})
