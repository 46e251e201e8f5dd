// The server's main thread never loads tfjs: kinds reach it as specs (schemas, inputs,
// checks: src/tasks/registry.ts) and only workers load the math (src/tasks/compute-registry.ts).
// tfjs's ~43 MB of heap on the main thread made each of its garbage collections ~3x slower.
// tfjs-core announces itself by creating its engine on globalThis when it loads.
import t from 'tap'

const loaded = (): boolean => '_tfengine' in globalThis

t.test('the app and everything the main thread imports leave tfjs unloaded; a worker module loads it', async t => {
  t.notOk(loaded(), 'not loaded before')
  const { buildServer } = await import('../../server/app.ts')
  t.type(buildServer, 'function')
  await import('../../src/client/index.ts')
  await import('../../src/store/state-file.ts')
  await import('../../src/store/task-request.ts')
  t.notOk(loaded(), 'server/app.ts, the client and the store leave tfjs unloaded')
  await import('../../src/tasks/compute-registry.ts')
  t.ok(loaded(), 'the probe works: the compute registry loads tfjs')
})
