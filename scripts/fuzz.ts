// Long fuzz runs: npm run fuzz -- --cases 10000 [--task-cases N] [--seed S] [--start N]
//   [--backend wasm] [--workers 1]
// The same cases and checks as test/fuzz/fuzz.test.ts (test/fuzz/generators.ts and runner.ts)
// and test/fuzz/task-fuzz.test.ts (task-generators.ts, task-runner.ts: --task-cases, by
// default as many as --cases) against the real app on a loopback port with a data directory,
// plus a summary: statuses, codes, mutations, every failure with the (seed, case) that replays
// it, live tensors, the task instances (sentinels bit-identical) and readiness afterwards.
// Exit status 1 when anything failed.
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { makeConfig } from '../src/config.ts'
import { buildServer } from '../server/app.ts'
import { runFuzz } from '../test/fuzz/runner.ts'
import { FUZZ_LIMITS } from '../test/fuzz/generators.ts'
import { compareSnapshots, makeTargets, runTaskFuzz, snapshot } from '../test/fuzz/task-runner.ts'

const { values } = parseArgs({
  options: {
    cases: { type: 'string', default: '10000' },
    'task-cases': { type: 'string' },
    seed: { type: 'string' },
    start: { type: 'string', default: '0' },
    backend: { type: 'string', default: 'wasm' },
    workers: { type: 'string', default: '1' }
  }
})
const seed = values.seed !== undefined ? Number(values.seed) >>> 0 : (Date.now() & 0xffffffff) >>> 0
const cases = Number(values.cases)
const start = Number(values.start)
const taskCases = Number(values['task-cases'] ?? cases)
const dataDir = fs.mkdtempSync(path.join(fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir(), 'ssl-fuzz-'))

const config = makeConfig({ backend: values.backend as 'wasm', workers: Number(values.workers), queueSize: 8, logLevel: 'silent', dataDir, ...FUZZ_LIMITS })
const app = await buildServer(config)
await app.pool.ready()
const url = await app.listen({ host: '127.0.0.1', port: 0 })
const targets = await makeTargets(app)
const tasksBefore = await snapshot(app)
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
for (const f of stats.failures.slice(0, 50)) console.log(`FAIL case ${f.index} (${f.form}, ${f.kind}, ${f.mutation}): ${f.problem}   replay: --seed ${seed} --start ${f.index} --cases 1 --task-cases 0`)
if (stats.failures.length > 50) console.log(`... and ${stats.failures.length - 50} more`)

// ---- the task-instance routes ----
console.log(`\ntask routes: cases ${start}..${start + taskCases - 1}, targets ${JSON.stringify({ ...targets, scratchState: `${targets.scratchState.length} bytes` })}`)
const t1 = performance.now()
const tstats = await runTaskFuzz({
  app,
  url,
  seed,
  cases: taskCases,
  start,
  targets,
  progress: (done, s) => console.log(`  ${done} task cases, ${s.failures.length} failures, ${Math.round(done / ((performance.now() - t1) / 1000))} cases/s`)
})
const tasksAfter = await snapshot(app)
const changed = compareSnapshots(tasksBefore, tasksAfter, targets)
const ready2 = (await app.inject({ url: '/health/ready' })).statusCode
console.log(`\n${tstats.cases} task cases in ${(tstats.ms / 1000).toFixed(1)} s (${Math.round(tstats.cases / (tstats.ms / 1000))}/s)`)
console.log(`statuses:  ${JSON.stringify(tstats.byStatus)}`)
console.log(`codes:     ${JSON.stringify(tstats.byCode)}`)
console.log(`mutations: ${JSON.stringify(tstats.byMutation)}`)
console.log(`instances: ${tasksBefore.ids.length} before, ${tasksAfter.ids.length} after; live tensors ${tasksBefore.live.join(',')} -> ${tasksAfter.live.join(',')}; ${changed.length ? 'CHANGED: ' + changed.join('; ') : 'sentinels bit-identical'}; /health/ready ${ready2}`)
for (const f of tstats.failures.slice(0, 50)) console.log(`FAIL task case ${f.index} (${f.kind}, ${f.mutation}): ${f.problem}   replay: --seed ${seed} --start ${f.index} --cases 0 --task-cases 1`)
if (tstats.failures.length > 50) console.log(`... and ${tstats.failures.length - 50} more`)

const ok = stats.failures.length === 0 && ready === 200 && after.join() === before.join() && tstats.failures.length === 0 && changed.length === 0 && ready2 === 200
console.log(ok ? 'OK' : 'FAILED')
await app.close()
fs.rmSync(dataDir, { recursive: true, force: true })
process.exit(ok ? 0 : 1)
