// Bounded fuzz of POST /v1/loss/{kind} (msgpack and JSON) and GET /v1/stream frames: a few
// thousand mutated requests from one seed (FUZZ_SEED, printed; FUZZ_CASES to change the
// count). Every answer is 200 (only for mutations that can leave a request valid, with a
// finite loss) or a 4xx with the API.md error body; never a 5xx, a hang or a dropped stream.
// Afterwards the server is ready and its worker holds the same number of live tensors.
// Long runs: npm run fuzz -- --cases 10000 --seed S.
import t from 'tap'
import { testServer } from '../helpers/server.ts'
import { runFuzz } from './runner.ts'
import { FUZZ_LIMITS } from './generators.ts'

const seed = Number(process.env.FUZZ_SEED ?? 20261130) >>> 0
const cases = Number(process.env.FUZZ_CASES ?? 3000)

t.test(`fuzz: ${cases} cases, seed ${seed}`, async t => {
  t.comment(`seed ${seed} (replay: FUZZ_SEED=${seed} npx tap test/fuzz/fuzz.test.ts)`)
  // limits small enough that giant strings and arrays reach them
  const { app, url } = await testServer(t, { listen: true, ...FUZZ_LIMITS })
  const live = (): number[] => app.pool.workers().map(w => w.liveTensors)
  const before = live()

  const stats = await runFuzz({ app, url, seed, cases })
  t.comment(`${stats.cases} cases in ${stats.ms} ms; statuses ${JSON.stringify(stats.byStatus)}`)
  t.comment(`codes ${JSON.stringify(stats.byCode)}`)
  t.equal(stats.cases, cases)
  t.same(stats.failures.slice(0, 20), [], `no failures (${stats.failures.length} in all)`)
  t.ok(Object.keys(stats.byStatus).every(s => s === '200' || s === 'close 1009' || /^4\d\d$/.test(s)), `only 200, 4xx and 1009: ${Object.keys(stats.byStatus).join(', ')}`)
  t.ok((stats.byStatus['413'] ?? 0) > 0, 'some bodies and tensors are over the limits')
  t.ok((stats.byStatus['400'] ?? 0) > cases / 3, 'most cases are refused')
  t.ok((stats.byStatus['200'] ?? 0) > 0, 'some mutations leave a valid request, and it is computed')
  for (const code of ['invalid_body', 'invalid_tensor', 'non_finite', 'unknown_kind', 'too_large']) t.ok(stats.byCode[code] > 0, `reached ${code}`)

  t.equal((await app.inject({ url: '/health/ready' })).statusCode, 200, 'ready afterwards')
  t.same(live(), before, `live tensors per worker unchanged: ${before.join(', ')}`)
  t.equal(app.pool.queueDepth, 0)
})
