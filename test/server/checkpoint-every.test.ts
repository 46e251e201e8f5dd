// --checkpoint-every N > 1 with the real entry (server/start.ts), as docs/task-instances.md
// "Durability" documents it: the checkpoint is written when the instance is N steps past its
// last one, so with N = 3 and steps 1..5 acknowledged a kill -9 loses steps 4 and 5 (the
// restart is at step 3, bit for bit); a graceful stop (SIGTERM) writes the pending steps
// first (the restart is at step 5).
import t, { type Test } from 'tap'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { readSafetensors } from '../../src/store/safetensors.ts'
import { startRealServer, type RealServer } from '../helpers/server.ts'

const CONFIG = { num_input_channels: 3, target_dim: 4, hidden_channels: 8, num_blocks: 1 }

async function start (t: Test, dataDir: string): Promise<RealServer> {
  const server = await startRealServer(t, ['--data-dir', dataDir, '--checkpoint-every', '3'])
  t.match(server.log(), /"checkpointEvery":3/, 'the server runs with --checkpoint-every 3')
  return server
}

function zOf (k: number): object {
  return { dtype: 'float32', shape: [2, 3, 4, 4], data: Array.from({ length: 96 }, (_, i) => Math.fround(Math.sin(i * 0.7 + k) * 0.8)) }
}

async function post (url: string, body: object): Promise<any> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
  if (res.status !== 200 && res.status !== 201) throw new Error(`${url}: ${res.status} ${await res.text()}`)
  return res.json()
}

async function state (url: string, id: string): Promise<Buffer> {
  const res = await fetch(`${url}/v1/tasks/${id}/state?optimizer=true`)
  if (res.status !== 200) throw new Error(`state ${res.status}`)
  return Buffer.from(await res.arrayBuffer())
}

async function info (url: string, id: string): Promise<any> {
  const res = await fetch(`${url}/v1/tasks/${id}`)
  if (res.status !== 200) throw new Error(`info ${res.status}`)
  return res.json()
}

const step = async (url: string, id: string, k: number): Promise<number> =>
  (await post(`${url}/v1/tasks/${id}/loss`, { inputs: { z: zOf(k) }, options: { gradients: false } })).step

const stepOnDisk = (file: string): number => Number(readSafetensors(fs.readFileSync(file)).metadata.step)

t.test('--checkpoint-every 3: kill -9 restores step 3 of 5; SIGTERM writes the pending steps', async t => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-every-'))
  t.teardown(() => fs.rmSync(dataDir, { recursive: true, force: true }))

  const first = await start(t, dataDir)
  const id = (await post(`${first.url}/v1/tasks`, { kind: 'cpc', config: CONFIG, seed: 11, optimizer: { name: 'adam', lr: 0.01 } })).id
  const file = path.join(dataDir, `${id}.safetensors`)
  t.equal(stepOnDisk(file), 0, 'creation is written at once')
  const recorded = new Map<number, Buffer>()
  const onDisk: number[] = []
  for (let k = 0; k < 5; k++) {
    t.equal(await step(first.url, id, k), k + 1, `step ${k + 1} acknowledged`)
    recorded.set(k + 1, await state(first.url, id))
    onDisk.push(stepOnDisk(file))
  }
  t.same(onDisk, [0, 0, 3, 3, 3], 'the checkpoint is written at step 3 only')
  first.child.kill('SIGKILL')
  t.equal(await first.exited, null, 'killed, no exit code')

  const second = await start(t, dataDir)
  t.equal((await info(second.url, id)).step, 3, 'after kill -9: the last multiple of 3')
  t.ok((await state(second.url, id)).equals(recorded.get(3)!), 'parameters and optimizer state of step 3, bit for bit')
  // steps 4 and 5 again (the same batches): the same states as before the kill
  for (let k = 3; k < 5; k++) t.equal(await step(second.url, id, k), k + 1)
  t.ok((await state(second.url, id)).equals(recorded.get(5)!), 'replayed steps 4, 5 give the same state')
  t.equal(stepOnDisk(file), 3, 'steps 4 and 5 are pending (not yet on disk)')
  second.child.kill('SIGTERM')
  t.equal(await second.exited, 0, 'graceful stop')
  t.equal(stepOnDisk(file), 5, 'SIGTERM wrote the pending steps')

  const third = await start(t, dataDir)
  t.equal((await info(third.url, id)).step, 5, 'after SIGTERM: step 5')
  t.ok((await state(third.url, id)).equals(recorded.get(5)!), 'bit for bit')
  // the next checkpoint is due 3 steps after the flushed one
  for (let k = 5; k < 8; k++) await step(third.url, id, k)
  t.equal(stepOnDisk(file), 8, 'counting restarts from the restored step: written at step 8')
  third.child.kill('SIGTERM')
  t.equal(await third.exited, 0)
})
