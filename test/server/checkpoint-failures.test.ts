// A checkpoint that cannot be written (docs/task-instances.md "Durability": read-only disk,
// disk full): the updating step answers 503 unavailable naming the error, the instance goes
// back to its last durable state, stateless kinds keep serving, and once the disk is healed
// the next step succeeds and is on disk.
//
// How the disk is broken: the tests run as root, and permissions (chmod) do not stop root,
// so the failure is made with the file system's structure instead, which binds root too.
// The instance's checkpoint path `<data-dir>/<id>.safetensors` is replaced by a directory
// (the real checkpoint is moved aside first). A checkpoint write then opens its temp file,
// writes and fsyncs it as usual, and fails at the rename that would commit it: rename(2) of a
// file over a directory is EISDIR for every user. That is the last step of the commit, the
// one a full or read-only disk can also fail at, so every earlier step (temp file, fsync)
// and the temp file's cleanup are exercised too. Reading the checkpoint also fails while the
// directory is there (EISDIR), so the disk is unreadable for this instance until healed.
// Healing puts the real checkpoint back; nothing else is touched.
import t, { type Test } from 'tap'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import type { FastifyInstance } from 'fastify'
import { readSafetensors } from '../../src/store/safetensors.ts'
import { loadFixtures } from '../helpers/fixtures.ts'
import { testServer } from '../helpers/server.ts'

const CONFIG = { num_input_channels: 3, target_dim: 4, hidden_channels: 8, num_blocks: 1 }
const OCTET = { 'content-type': 'application/octet-stream' }

function tmpDir (t: Test): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-ckpt-fail-'))
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
  return dir
}

function zOf (k: number): object {
  return { dtype: 'float32', shape: [2, 3, 4, 4], data: Array.from({ length: 96 }, (_, i) => Math.fround(Math.sin(i * 0.7 + k) * 0.8)) }
}

const stepBody = (k: number): object => ({ inputs: { z: zOf(k) }, options: { gradients: false } })

async function stateOf (app: FastifyInstance, id: string): Promise<{ status: number, body: Buffer }> {
  const res = await app.inject({ method: 'GET', url: `/v1/tasks/${id}/state?optimizer=true` })
  return { status: res.statusCode, body: res.rawPayload }
}

/** The step recorded in the checkpoint on disk. */
const stepOnDisk = (file: string): number => Number(readSafetensors(fs.readFileSync(file)).metadata.step)

/** Files of interrupted writes (.<id>.safetensors.tmp-...) left in the data directory. */
const temps = (dir: string): string[] => fs.readdirSync(dir).filter(f => f.includes('.tmp-'))

/** Breaks the instance's checkpoint path (see the file comment); returns the healing. */
function breakCheckpoint (file: string): () => void {
  const aside = file + '.aside'
  fs.renameSync(file, aside)
  fs.mkdirSync(file)
  fs.writeFileSync(path.join(file, 'occupied'), 'a directory where the checkpoint file must go')
  return () => {
    fs.rmSync(file, { recursive: true })
    fs.renameSync(aside, file)
  }
}

t.test('a failed checkpoint: 503 naming the error, rollback, stateless kinds serve, healed disk trains on', async t => {
  const dataDir = tmpDir(t)
  const { app } = await testServer(t, { dataDir })
  const made = await app.inject({ method: 'POST', url: '/v1/tasks', payload: { kind: 'cpc', config: CONFIG, seed: 5, optimizer: { name: 'adam', lr: 0.01 } } })
  t.equal(made.statusCode, 201)
  const id = made.json().id
  const file = path.join(dataDir, `${id}.safetensors`)
  for (let k = 0; k < 2; k++) t.equal((await app.inject({ method: 'POST', url: `/v1/tasks/${id}/loss`, payload: stepBody(k) })).json().step, k + 1)
  t.equal(stepOnDisk(file), 2, 'step 2 is durable')
  const durable = await stateOf(app, id)
  t.equal(durable.status, 200)

  const heal = breakCheckpoint(file)
  const failed = await app.inject({ method: 'POST', url: `/v1/tasks/${id}/loss`, payload: stepBody(2) })
  t.equal(failed.statusCode, 503, 'the step is refused (not 500, no hang)')
  const error = failed.json().error
  t.equal(error.code, 'unavailable')
  t.match(error.message, /checkpoint failed while checkpointing step 3/, 'says what failed')
  t.match(error.message, /EISDIR/, 'names the file system error')
  t.match(error.message, new RegExp(id), 'names the instance')
  t.match(error.message, /stays at its last checkpoint/)
  t.ok(failed.headers['retry-after'], 'retryable: Retry-After')
  t.same(temps(dataDir), [], 'the temp file of the failed write is removed')
  t.equal(JSON.parse((await app.inject({ url: `/v1/tasks/${id}` })).body).step, 2, 'the instance says step 2')

  // while the checkpoint cannot be read either, the instance is unavailable, not broken
  const unreadable = await stateOf(app, id)
  t.equal(unreadable.status, 503)
  t.match(JSON.parse(unreadable.body.toString()).error.message, /cannot be read \(EISDIR/)
  const again = await app.inject({ method: 'POST', url: `/v1/tasks/${id}/loss`, payload: stepBody(2) })
  t.equal(again.statusCode, 503, 'a retry on the broken disk is refused the same way')

  // stateless kinds do not need the disk
  const fixture = loadFixtures().find(f => f.kind === 'nt-xent')!
  const stateless = await app.inject({ method: 'POST', url: '/v1/loss/nt-xent', payload: fixture.request })
  t.equal(stateless.statusCode, 200, 'POST /v1/loss/nt-xent answers while the disk is broken')
  t.ok(Number.isFinite(stateless.json().loss))

  heal()
  const back = await stateOf(app, id)
  t.equal(back.status, 200)
  t.ok(back.body.equals(durable.body), 'the state is the last durable one (step 2), bit for bit')
  const next = await app.inject({ method: 'POST', url: `/v1/tasks/${id}/loss`, payload: stepBody(2) })
  t.equal(next.statusCode, 200, 'the healed disk takes the next step')
  t.equal(next.json().step, 3)
  t.equal(stepOnDisk(file), 3, 'and step 3 is durable')
  t.same(temps(dataDir), [])
})

t.test('a failed import (PUT state) leaves the instance as it was', async t => {
  const dataDir = tmpDir(t)
  const { app } = await testServer(t, { dataDir })
  const id = (await app.inject({ method: 'POST', url: '/v1/tasks', payload: { kind: 'cpc', config: CONFIG, seed: 6, optimizer: { name: 'sgd', lr: 0.1, momentum: 0.9 } } })).json().id
  const file = path.join(dataDir, `${id}.safetensors`)
  t.equal((await app.inject({ method: 'POST', url: `/v1/tasks/${id}/loss`, payload: stepBody(0) })).statusCode, 200)
  const before = await stateOf(app, id)
  // another instance's state, to import (different seed: different parameters)
  const other = (await app.inject({ method: 'POST', url: '/v1/tasks', payload: { kind: 'cpc', config: CONFIG, seed: 7, optimizer: { name: 'sgd', lr: 0.1, momentum: 0.9 } } })).json().id
  const foreign = (await stateOf(app, other)).body
  t.notOk(foreign.equals(before.body))

  const heal = breakCheckpoint(file)
  const put = await app.inject({ method: 'PUT', url: `/v1/tasks/${id}/state`, headers: OCTET, payload: foreign })
  t.equal(put.statusCode, 503)
  t.match(put.json().error.message, /checkpoint failed while importing the state .*EISDIR/)
  // the instance is still held in memory (an import writes before it replaces anything)
  const still = await stateOf(app, id)
  t.equal(still.status, 200)
  t.ok(still.body.equals(before.body), 'parameters and optimizer state unchanged')
  heal()
  t.equal(stepOnDisk(file), 1)
  t.same(temps(dataDir), [])
})
