// Bounded fuzz of the task-instance routes: POST /v1/tasks, POST /v1/tasks/{id}/loss,
// GET /v1/tasks/{id}, GET/PUT/DELETE .../state and DELETE /v1/tasks/{id} with bad ids, mutated
// bodies and safetensors, and WebSocket `task` frames (task-generators.ts). Every answer is a
// catalogued 4xx or a 2xx where the case can be valid; afterwards the server is ready, the
// instances that existed before are all there, the two that no valid call can change are
// bit-identical, and the workers hold the same number of live tensors.
// FUZZ_SEED / TASK_FUZZ_CASES to change; long runs: npm run fuzz -- --cases 10000.
import t from 'tap'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { testServer } from '../helpers/server.ts'
import { FUZZ_LIMITS } from './generators.ts'
import { compareSnapshots, makeTargets, runTaskFuzz, snapshot } from './task-runner.ts'

const seed = Number(process.env.FUZZ_SEED ?? 20261201) >>> 0
const cases = Number(process.env.TASK_FUZZ_CASES ?? 2500)

t.test(`task-route fuzz: ${cases} cases, seed ${seed}`, async t => {
  t.comment(`seed ${seed} (replay: FUZZ_SEED=${seed} npx tap test/fuzz/task-fuzz.test.ts)`)
  // a tmpfs when there is one: the fuzz is about answers, not about fsync's speed
  const dataDir = fs.mkdtempSync(path.join(fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir(), 'ssl-task-fuzz-'))
  t.teardown(() => fs.rmSync(dataDir, { recursive: true, force: true }))
  const { app, url } = await testServer(t, { listen: true, dataDir, ...FUZZ_LIMITS })
  const targets = await makeTargets(app)
  const before = await snapshot(app)

  const stats = await runTaskFuzz({ app, url, seed, cases, targets })
  t.comment(`${stats.cases} cases in ${stats.ms} ms; statuses ${JSON.stringify(stats.byStatus)}`)
  t.comment(`codes ${JSON.stringify(stats.byCode)}`)
  t.equal(stats.cases, cases)
  t.same(stats.failures.slice(0, 20), [], `no failures (${stats.failures.length} in all)`)
  const statuses = Object.keys(stats.byStatus).map(k => k.split(' ').slice(1).join(' '))
  t.ok(statuses.every(s => /^(200|201|close 1009|4\d\d)$/.test(s)), `only 200, 201, 4xx and 1009: ${[...new Set(statuses)].join(', ')}`)
  for (const key of ['create 201', 'create 400', 'loss 200', 'loss 400', 'loss 404', 'ws-task 200', 'ws-task 400', 'state-put 200', 'state-put 400', 'state-get 200', 'state-get 404', 'delete 404']) {
    t.ok((stats.byStatus[key] ?? 0) > 0, `reached ${key} (${stats.byStatus[key] ?? 0})`)
  }
  for (const code of ['invalid_body', 'invalid_config', 'unknown_task', 'unknown_kind', 'too_large']) t.ok(stats.byCode[code] > 0, `reached ${code}`)

  t.equal((await app.inject({ url: '/health/ready' })).statusCode, 200, 'ready afterwards')
  const after = await snapshot(app)
  t.same(compareSnapshots(before, after, targets), [], 'the same instances, sentinels bit-identical, live tensors unchanged')
  t.equal(app.pool.queueDepth, 0)
  t.same(fs.readdirSync(dataDir).filter(f => f.includes('.tmp-')), [], 'no temp file left')
  t.equal(fs.readdirSync(dataDir).filter(f => f.endsWith('.safetensors')).length, before.ids.length, 'one checkpoint per instance, none left by created-and-deleted ones')
})
