// A stream session without a socket: answers tagged by id in completion order, the in-flight
// cap pauses reading, errors answer their own frame, a dropped connection cancels its work,
// drain answers what is in flight and then closes 1001.
import t from 'tap'
import { StreamSession, type StreamSocket } from '../../src/stream/session.ts'
import { decode, encode } from '../../src/wire/msgpack.ts'
import { LossServerError } from '../../src/errors.ts'

function fakeSocket () {
  const sent: any[] = []
  const log: string[] = []
  const socket: StreamSocket = {
    send: b => { sent.push(decode(b)) },
    pause: () => { log.push('pause') },
    resume: () => { log.push('resume') },
    close: (code, reason) => { log.push(`close ${code} ${reason}`) }
  }
  return { socket, sent, log }
}

/** A handler whose evaluations the test settles by hand. */
function manualHandler () {
  const pending = new Map<unknown, { resolve: (v: unknown) => void, reject: (e: unknown) => void, signal: AbortSignal }>()
  const handler = (frame: any, signal: AbortSignal) => new Promise((resolve, reject) => { pending.set(frame.id, { resolve, reject, signal }) })
  return { handler, pending }
}

const frame = (id: unknown, extra: object = {}): Buffer => encode({ id, kind: 'nt-xent', inputs: {}, ...extra })
const tick = () => new Promise(resolve => setImmediate(resolve))

t.test('answers carry their id and come in completion order', async t => {
  const { socket, sent } = fakeSocket()
  const { handler, pending } = manualHandler()
  const s = new StreamSession(socket, handler, { maxInFlight: 4 })
  s.onFrame(frame('a'))
  s.onFrame(frame(2))
  pending.get(2)!.resolve({ loss: 2 })
  await tick()
  pending.get('a')!.resolve({ loss: 1 })
  await tick()
  t.same(sent, [{ id: 2, ok: true, result: { loss: 2 } }, { id: 'a', ok: true, result: { loss: 1 } }])
})

t.test('at the in-flight cap the session stops reading, and reads again when a slot frees', async t => {
  const { socket, sent, log } = fakeSocket()
  const { handler, pending } = manualHandler()
  const s = new StreamSession(socket, handler, { maxInFlight: 2 })
  s.onFrame(frame(1))
  s.onFrame(frame(2))
  t.same(log, [])
  s.onFrame(frame(3)) // already read from the socket before the pause took effect
  t.same(log, ['pause'])
  t.equal(s.active, 2, 'the third waits, not started')
  pending.get(1)!.resolve('one')
  await tick()
  t.equal(s.active, 2, 'the waiting frame took the free slot')
  t.ok(pending.has(3))
  t.same(log, ['pause'], 'still paused: no slot free')
  pending.get(2)!.resolve('two')
  await tick()
  t.same(log, ['pause', 'resume'])
  pending.get(3)!.resolve('three')
  await tick()
  t.same(sent.map(a => a.id), [1, 2, 3])
})

t.test('an error answers its own frame and keeps the session', async t => {
  const { socket, sent, log } = fakeSocket()
  const { handler, pending } = manualHandler()
  const internal: unknown[] = []
  const s = new StreamSession(socket, handler, { maxInFlight: 4, onInternalError: e => internal.push(e) })
  s.onFrame(Buffer.from([0xc1]))
  s.onFrame(encode({ id: 7, inputs: {} }))
  s.onFrame(Buffer.from('{"id": 1}'), false)
  s.onFrame(frame(8))
  pending.get(8)!.reject(new LossServerError('non_finite', 'inputs.out_1 has NaN at flat index 0', ['inputs', 'out_1', 'data', 0]))
  s.onFrame(frame(9))
  pending.get(9)!.reject(new TypeError('a bug'))
  await tick()
  t.same(sent[0], { id: null, ok: false, error: { code: 'invalid_body', message: sent[0].error.message } })
  t.match(sent[0].error.message, /msgpack/)
  t.same(sent[1].id, 7)
  t.equal(sent[1].error.code, 'invalid_body')
  t.match(sent[1].error.message, /kind/)
  t.same([sent[2].id, sent[2].error.code], [null, 'invalid_body'])
  t.same(sent[3], { id: 8, ok: false, error: { code: 'non_finite', message: 'inputs.out_1 has NaN at flat index 0', path: ['inputs', 'out_1', 'data', 0] } })
  t.same(sent[4], { id: 9, ok: false, error: { code: 'internal', message: 'internal error; the server log has the details' } }, 'no internals leak')
  t.equal(internal.length, 1)
  t.notOk(log.some(l => l.startsWith('close')), 'the connection stays open')
})

t.test('a dropped connection cancels its work and sends nothing more', async t => {
  const { socket, sent } = fakeSocket()
  const { handler, pending } = manualHandler()
  const s = new StreamSession(socket, handler, { maxInFlight: 4 })
  s.onFrame(frame(1))
  s.onFrame(frame(2))
  s.close()
  t.ok(pending.get(1)!.signal.aborted)
  t.ok(pending.get(2)!.signal.aborted)
  pending.get(1)!.resolve('late')
  await tick()
  t.same(sent, [])
})

t.test('drain answers what is in flight, refuses new frames, then closes 1001', async t => {
  const { socket, sent, log } = fakeSocket()
  const { handler, pending } = manualHandler()
  const s = new StreamSession(socket, handler, { maxInFlight: 4 })
  s.onFrame(frame(1))
  let drained = false
  const done = s.drain().then(() => { drained = true })
  s.onFrame(frame(2))
  await tick()
  t.notOk(drained)
  t.same([sent[0].id, sent[0].error.code], [2, 'not_ready'])
  pending.get(1)!.resolve('ok')
  await done
  t.same(sent[1], { id: 1, ok: true, result: 'ok' })
  // reading resumes before the close so the client's half of the handshake can arrive
  t.same(log, ['pause', 'resume', 'close 1001 server shutting down'])
})

t.test('a large answer goes out as fragments whose concatenation is the one message, its gradients as views of the result memory', async t => {
  const messages: Uint8Array[][] = []
  const whole: Buffer[] = []
  const socket: StreamSocket = {
    send: b => { whole.push(b) },
    sendFragments: parts => { messages.push(parts) },
    pause: () => {},
    resume: () => {},
    close: () => {}
  }
  const grad = new Float32Array(300_000).map((_, i) => Math.sin(i))
  const gradBytes = new Uint8Array(grad.buffer)
  const s = new StreamSession(socket, async () => ({ loss: 1.5, grads: { x: { dtype: 'float32', shape: [300_000], data: gradBytes } } }), { maxInFlight: 1 })
  s.onFrame(frame(7))
  await tick()
  t.equal(whole.length, 0, 'not sent as one buffer')
  t.equal(messages.length, 1)
  const parts = messages[0]
  t.ok(parts.length > 1, `${parts.length} fragments`)
  t.ok(parts.some(p => p.buffer === grad.buffer), 'the gradient is written from its own memory, not a copy')
  const joined = Buffer.concat(parts)
  const answer = decode(joined) as any
  t.equal(answer.id, 7)
  t.equal(answer.ok, true)
  t.equal(answer.result.loss, 1.5)
  const data = answer.result.grads.x.data as Uint8Array
  t.same(new Float32Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength)), grad)

  // a small answer stays one frame, even with a tensor in it
  const small = new Float32Array(20_000).fill(0.5)
  const s2 = new StreamSession(socket, async () => ({ loss: 2, grads: { x: { dtype: 'float32', shape: [20_000], data: new Uint8Array(small.buffer) } } }), { maxInFlight: 1 })
  s2.onFrame(frame(8))
  await tick()
  t.equal(messages.length, 1, 'no fragments for a small answer')
  const a2 = decode(whole[0]) as any
  t.equal(a2.id, 8)
  t.equal(a2.result.grads.x.data.byteLength, 80_000)
})

t.test('the handler gets the frame memory as owned only when the frame is the whole of its buffer', async t => {
  const { socket } = fakeSocket()
  const seen: Array<ArrayBuffer | undefined> = []
  const s = new StreamSession(socket, async (_f, _s, owned) => { seen.push(owned); return 1 }, { maxInFlight: 4 })
  const own = Buffer.from(frame(1)) // a copy: Buffer.from(buffer) of a small frame comes from the shared pool
  const alone = Buffer.allocUnsafeSlow(own.byteLength)
  own.copy(alone)
  s.onFrame(alone)
  const big = Buffer.allocUnsafeSlow(own.byteLength + 16)
  own.copy(big, 8)
  s.onFrame(big.subarray(8, 8 + own.byteLength))
  s.onFrame(own)
  await tick()
  t.equal(seen[0], alone.buffer, 'a frame that is its whole buffer is owned')
  t.equal(seen[1], undefined, 'a slice of a larger buffer is not')
  t.equal(seen[2], own.byteOffset === 0 && own.byteLength === own.buffer.byteLength ? own.buffer : undefined)
})
