// Every shared fixture through the TypeScript client against the real app on a port: HTTP
// msgpack (host Float32Array inputs), HTTP JSON (the fixture's own wire tensors) and all of
// them pipelined on one LossStream, answers checked with LOSSES.md's tolerances.
import t from 'tap'
import { loadFixtures, toHost, toHostInputs, type Fixture } from '../helpers/fixtures.ts'
import { checkFixtureAnswer, testServer } from '../helpers/server.ts'
import { LossClient, type KindName, type LossRequest, type LossResult } from '../../src/client/index.ts'

const fixtures = loadFixtures()

/** The client's answer as checkFixtureAnswer reads answers (tensors with number data). */
function plain (r: LossResult): unknown {
  const tensor = (x: { shape: number[], data: Float32Array }): unknown => ({ dtype: 'float32', shape: x.shape, data: Array.from(x.data) })
  const tree = (m: Record<string, any> | undefined): unknown => m && Object.fromEntries(Object.entries(m).map(([k, v]) => [k, Array.isArray(v) ? v.map(tensor) : tensor(v)]))
  return { ...r, grads: tree(r.grads), param_grads: tree(r.param_grads) }
}

function hostRequest (f: Fixture): LossRequest {
  const r = f.request
  return {
    ...(r.config ? { config: r.config } : {}),
    inputs: toHostInputs(r.inputs),
    ...(r.params ? { params: Object.fromEntries(Object.entries(r.params).map(([k, v]) => [k, toHost(v)])) } : {}),
    ...(r.options ? { options: r.options } : {})
  }
}

const { url } = await testServer(t, { listen: true, maxInFlightPerConnection: 4 })

t.test('HTTP msgpack, host tensors', async t => {
  const sizes: number[] = []
  const client = new LossClient({ url, form: 'msgpack', onExchange: e => sizes.push(e.requestBytes) })
  for (const f of fixtures) {
    const r = await client.loss(f.kind as KindName, hostRequest(f))
    for (const g of Object.values(r.grads ?? {}).flat()) t.ok(g.data instanceof Float32Array && g.dtype === 'float32', `${f.name}: gradients are float32 host tensors`)
    checkFixtureAnswer(t, f, plain(r), 'client msgpack')
  }
  t.equal(sizes.length, fixtures.length, 'one exchange per call')
})

t.test('HTTP JSON, the fixtures\' wire tensors as given', async t => {
  const client = new LossClient({ url, form: 'json' })
  for (const f of fixtures) {
    const r = await client.loss(f.kind as KindName, f.request as unknown as LossRequest)
    checkFixtureAnswer(t, f, plain(r), 'client json')
  }
})

t.test('per-kind methods call their route', async t => {
  const client = new LossClient({ url })
  const byKind = { 'nt-xent': client.ntXent.bind(client), 'amdim-nce': client.amdimNce.bind(client), cpc: client.cpc.bind(client), 'feature-map-contrastive': client.featureMapContrastive.bind(client) } as Record<string, (r: any) => Promise<LossResult>>
  for (const kind of Object.keys(byKind)) {
    const f = fixtures.find(x => x.kind === kind)!
    checkFixtureAnswer(t, f, plain(await byKind[kind](hostRequest(f))), `client.${kind}`)
  }
})

t.test('LossStream: every fixture in flight at once, window of 3', async t => {
  const client = new LossClient({ url })
  const stream = await client.stream({ maxInFlight: 3 })
  let most = 0
  const all = fixtures.map(f => {
    const p = stream.loss(f.kind as KindName, hostRequest(f))
    most = Math.max(most, stream.pending.inFlight)
    return p
  })
  t.equal(most, 3, 'never more than maxInFlight frames on the wire')
  t.equal(stream.pending.waiting, fixtures.length - 3, 'the rest wait in the client')
  const order: string[] = []
  const results = await Promise.all(all.map((p, i) => p.then(r => { order.push(fixtures[i].name); return r })))
  t.equal(order.length, fixtures.length, 'every request settled')
  results.forEach((r, i) => checkFixtureAnswer(t, fixtures[i], plain(r), 'client stream'))
  t.same(stream.pending, { inFlight: 0, waiting: 0 })
  await stream.close()
  await t.rejects(stream.loss('nt-xent', hostRequest(fixtures[0])), { name: 'LossClientError', code: 'connection_closed' }, 'a closed stream refuses new requests')
})

t.test('float16 on the wire: gradients come back float16, widened to float32', async t => {
  const f = fixtures.find(x => x.kind === 'nt-xent')!
  const client = new LossClient({ url, dtype: 'float16' })
  const r = await client.loss('nt-xent', hostRequest(f))
  t.equal((r.grads!.out_1 as { dtype: string }).dtype, 'float16')
  t.ok((r.grads!.out_1 as { data: Float32Array }).data instanceof Float32Array)
  t.ok(Number.isFinite(r.loss))
  const ref = f.expected.loss
  t.ok(Math.abs(r.loss - ref) <= 1e-2 * Math.abs(ref), `float16 inputs keep the loss within 1e-2: ${r.loss} vs ${ref}`)
})
