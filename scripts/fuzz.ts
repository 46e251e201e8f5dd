// Long fuzz runs: npm run fuzz -- --cases 10000 [--seed S] [--backend wasm] [--workers 1]
// The same cases and checks as test/fuzz/fuzz.test.ts (test/fuzz/generators.ts and runner.ts)
// against the real app on a loopback port, plus a summary: statuses, codes, mutations, every
// failure with the (seed, case) that replays it, live tensors and readiness afterwards.
// Exit status 1 when anything failed.
import { parseArgs } from 'node:util'
import { makeConfig } from '../src/config.ts'
import { buildServer } from '../server/app.ts'
import { runFuzz } from '../test/fuzz/runner.ts'
import { FUZZ_LIMITS } from '../test/fuzz/generators.ts'

const { values } = parseArgs({
  options: {
    cases: { type: 'string', default: '10000' },
    seed: { type: 'string' },
    start: { type: 'string', default: '0' },
    backend: { type: 'string', default: 'wasm' },
    workers: { type: 'string', default: '1' }
  }
})
const seed = values.seed !== undefined ? Number(values.seed) >>> 0 : (Date.now() & 0xffffffff) >>> 0
const cases = Number(values.cases)
const start = Number(values.start)

const config = makeConfig({ backend: values.backend as 'wasm', workers: Number(values.workers), queueSize: 8, logLevel: 'silent', ...FUZZ_LIMITS })
const app = await buildServer(config)
await app.pool.ready()
const url = await app.listen({ host: '127.0.0.1', port: 0 })
const live = (): number[] => app.pool.workers().map(w => w.liveTensors)
const before = live()
const rss0 = process.memoryUsage().rss
console.log(`fuzz: seed ${seed}, cases ${start}..${start + cases - 1}, backend ${config.backend}, ${app.pool.size} worker(s), limits ${JSON.stringify(FUZZ_LIMITS)}`)

const t0 = performance.now()
const stats = await runFuzz({
  app,
  url,
  seed,
  cases,
  start,
  progress: (done, s) => console.log(`  ${done} cases, ${s.failures.length} failures, ${Math.round(done / ((performance.now() - t0) / 1000))} cases/s`)
})

const ready = (await app.inject({ url: '/health/ready' })).statusCode
const after = live()
console.log(`\n${stats.cases} cases in ${(stats.ms / 1000).toFixed(1)} s (${Math.round(stats.cases / (stats.ms / 1000))}/s)`)
console.log(`statuses:  ${JSON.stringify(stats.byStatus)}`)
console.log(`codes:     ${JSON.stringify(stats.byCode)}`)
console.log(`mutations: ${JSON.stringify(stats.byMutation)}`)
console.log(`live tensors per worker: before ${before.join(',')}, after ${after.join(',')}; /health/ready ${ready}; main RSS ${(rss0 / 2 ** 20).toFixed(0)} -> ${(process.memoryUsage().rss / 2 ** 20).toFixed(0)} MiB`)
for (const f of stats.failures.slice(0, 50)) console.log(`FAIL case ${f.index} (${f.form}, ${f.kind}, ${f.mutation}): ${f.problem}   replay: --seed ${seed} --start ${f.index} --cases 1`)
if (stats.failures.length > 50) console.log(`... and ${stats.failures.length - 50} more`)
const ok = stats.failures.length === 0 && ready === 200 && after.join() === before.join()
console.log(ok ? 'OK' : 'FAILED')
await app.close()
process.exit(ok ? 0 : 1)
