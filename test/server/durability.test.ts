// Durability of task instances with the real entry (server/start.ts) and the default
// --checkpoint-every 1: SIGKILL during a stream of updating steps, restart on the same data
// directory, and the instance is exactly at the last acknowledged step, or one step ahead
// when that step reached the disk but its answer was lost (checkpoint before answer makes
// "ahead by the one in flight" the only other possibility); both cases are checked bit for
// bit. Then damaged checkpoints are quarantined with a log line and the server starts.
import t, { type Test } from 'tap'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { readSafetensors, writeSafetensors } from '../../src/store/safetensors.ts'
import { newTaskId } from '../../src/store/ids.ts'
import { startRealServer, type RealServer } from '../helpers/server.ts'

const CONFIG = { num_input_channels: 3, target_dim: 4, hidden_channels: 8, num_blocks: 1 }
const OPTIMIZER = { name: 'adam', lr: 0.01 }

function start (t: Test, dataDir: string): Promise<RealServer> {
  return startRealServer(t, ['--data-dir', dataDir])
}

function zOf (k: number): object {
  return { dtype: 'float32', shape: [2, 3, 4, 4], data: Array.from({ length: 96 }, (_, i) => Math.fround(Math.sin(i * 0.7 + k) * 0.8)) }
}

async function json (url: string, init: RequestInit = {}): Promise<{ status: number, body: any }> {
  const res = await fetch(url, { ...init, headers: { 'content-type': 'application/json', ...(init.headers ?? {}) } })
  return { status: res.status, body: await res.json() }
}

async function state (url: string, id: string): Promise<Buffer> {
  const res = await fetch(`${url}/v1/tasks/${id}/state?optimizer=true`)
  if (res.status !== 200) throw new Error(`state ${res.status}`)
  return Buffer.from(await res.arrayBuffer())
}

async function stepOn (url: string, id: string, k: number): Promise<number> {
  const r = await json(`${url}/v1/tasks/${id}/loss`, { method: 'POST', body: JSON.stringify({ inputs: { z: zOf(k) }, options: { gradients: false } }) })
  if (r.status !== 200) throw new Error(`step ${k}: ${r.status} ${JSON.stringify(r.body)}`)
  return r.body.step
}

/** The state after `to` steps, replayed on a fresh instance from the recorded state at `from`. */
async function replay (url: string, from: Buffer, fromStep: number, to: number): Promise<Buffer> {
  const fresh = await json(`${url}/v1/tasks`, { method: 'POST', body: JSON.stringify({ kind: 'cpc', config: CONFIG, optimizer: OPTIMIZER }) })
  const id = fresh.body.id
  const put = await fetch(`${url}/v1/tasks/${id}/state`, { method: 'PUT', headers: { 'content-type': 'application/octet-stream' }, body: new Uint8Array(from) })
  if (put.status !== 200) throw new Error(`replay import: ${put.status}`)
  for (let k = fromStep; k < to; k++) await stepOn(url, id, k)
  const out = await state(url, id)
  await fetch(`${url}/v1/tasks/${id}`, { method: 'DELETE' })
  return out
}

t.test('SIGKILL during a stream of steps: the acknowledged step survives bit for bit', async t => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-durable-'))
  t.teardown(() => fs.rmSync(dataDir, { recursive: true, force: true }))
  const first = await start(t, dataDir)
  const made = await json(`${first.url}/v1/tasks`, { method: 'POST', body: JSON.stringify({ kind: 'cpc', config: CONFIG, seed: 9, optimizer: OPTIMIZER }) })
  t.equal(made.status, 201)
  const id = made.body.id
  const recorded = new Map<number, Buffer>([[0, await state(first.url, id)]])
  let acked = 0
  let killed = false
  // kill at a random moment; something is always in flight (a step or a state export)
  const delay = 1500 + Math.floor(Math.random() * 2500)
  const timer = setTimeout(() => { killed = true; first.child.kill('SIGKILL') }, delay)
  try {
    while (!killed) {
      const s = await stepOn(first.url, id, acked)
      t.equal(s, acked + 1, `step ${s} acknowledged`)
      acked = s
      recorded.set(s, await state(first.url, id))
    }
  } catch (err) {
    t.ok(killed, `the stream ended by the kill (${(err as Error).message})`)
  }
  clearTimeout(timer)
  await first.exited
  t.ok(acked >= 1, `${acked} steps acknowledged before the kill at ${delay} ms`)

  const second = await start(t, dataDir)
  const info = await json(`${second.url}/v1/tasks/${id}`)
  t.equal(info.status, 200, 'the instance is back')
  const onDisk = info.body.step
  t.ok(onDisk === acked || onDisk === acked + 1, `restored step ${onDisk} is the acknowledged ${acked} or the one in flight`)
  const got = await state(second.url, id)
  // the expected state: recorded when the export after the step was answered, else replayed
  const base = Math.max(...[...recorded.keys()].filter(k => k <= onDisk))
  const expected = base === onDisk ? recorded.get(base)! : await replay(second.url, recorded.get(base)!, base, onDisk)
  t.ok(got.equals(expected), `parameters and optimizer state at step ${onDisk} bit-identical (${base === onDisk ? 'recorded' : `replayed from step ${base}`})`)
  t.equal(await stepOn(second.url, id, onDisk), onDisk + 1, 'and it trains on')
  second.child.kill('SIGTERM')
  t.equal(await second.exited, 0)
})

t.test('damaged checkpoints are quarantined with a log line; the server starts with the rest', async t => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-damaged-'))
  t.teardown(() => fs.rmSync(dataDir, { recursive: true, force: true }))
  const first = await start(t, dataDir)
  const made = await json(`${first.url}/v1/tasks`, { method: 'POST', body: JSON.stringify({ kind: 'cpc', config: CONFIG, optimizer: OPTIMIZER }) })
  const good = made.body.id
  await stepOn(first.url, good, 0)
  first.child.kill('SIGTERM')
  await first.exited

  const bytes = fs.readFileSync(path.join(dataDir, `${good}.safetensors`))
  const truncated = newTaskId()
  fs.writeFileSync(path.join(dataDir, `${truncated}.safetensors`), bytes.subarray(0, Math.floor(bytes.length * 0.6)))
  const badJson = newTaskId()
  const file = readSafetensors(bytes)
  const tensors = Object.fromEntries(Object.entries(file.tensors).map(([k, v]) => [k, { dtype: 'F32' as const, shape: v.shape, data: v.data }]))
  fs.writeFileSync(path.join(dataDir, `${badJson}.safetensors`), writeSafetensors(tensors, { ...file.metadata, id: badJson, config: '{"num_input_channels":' }))
  fs.writeFileSync(path.join(dataDir, `.${good}.safetensors.tmp-999-deadbeef`), bytes.subarray(0, 100))

  const second = await start(t, dataDir)
  const log = second.log()
  t.match(log, new RegExp(`damaged task checkpoint ${truncated}\\.safetensors set aside`), 'the truncated file is reported by name')
  t.match(log, new RegExp(`damaged task checkpoint ${badJson}\\.safetensors set aside: metadata config is not JSON`), 'the bad metadata is reported with the reason')
  t.match(log, /"restored":1,"quarantined":2/)
  const list = await json(`${second.url}/v1/tasks`)
  t.same(list.body.tasks.map((x: any) => x.id), [good], 'only the intact instance')
  t.equal(list.body.tasks[0].step, 1)
  t.equal((await json(`${second.url}/v1/tasks/${truncated}`)).status, 404)
  const quarantined = fs.readdirSync(path.join(dataDir, 'quarantine'))
  t.equal(quarantined.length, 2)
  t.ok(quarantined.some(f => f.startsWith(`${truncated}.safetensors.`)) && quarantined.some(f => f.startsWith(`${badJson}.safetensors.`)))
  t.notOk(fs.readdirSync(dataDir).some(f => f.includes('.tmp-')), 'the temp file of an interrupted write is gone')
  t.equal(await stepOn(second.url, good, 1), 2, 'the intact instance trains on')
  second.child.kill('SIGTERM')
  t.equal(await second.exited, 0)
})
