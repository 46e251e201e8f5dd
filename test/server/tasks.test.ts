// Task instances over HTTP and WebSocket (API.md "Task instances"): lifecycle, 5 updating
// steps against torch.optim (Adam, SGD) on Bolts' CPCTask, the same steps replayed in
// JavaScript from the stateless route bit for bit, state export/import round trips, files
// from and to the Python safetensors package, errors and limits.
import t, { type Test } from 'tap'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import type { FastifyInstance } from 'fastify'
import { encode } from '../../src/wire/msgpack.ts'
import { readSafetensors, writeSafetensors } from '../../src/store/safetensors.ts'
import { createOptimizer } from '../../src/tasks/optimizers/index.ts'
import { answerOf, msgpackTensor, openStream, tensorValues, testServer, MSGPACK } from '../helpers/server.ts'
import { hasPythonModules, python } from '../helpers/python.ts'
import { loadFixtures } from '../helpers/fixtures.ts'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..')
const CONFIG = { num_input_channels: 4, target_dim: 8, hidden_channels: 16, num_blocks: 2 }
const OCTET = { 'content-type': 'application/octet-stream' }

function tmpDir (t: Test): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-tasks-'))
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
  return dir
}

/** z for step k: deterministic, (2, 4, 5, 5) */
function zOf (k: number): { dtype: string, shape: number[], data: number[] } {
  const shape = [2, 4, 5, 5]
  return { dtype: 'float32', shape, data: Array.from({ length: 200 }, (_, i) => Math.fround(Math.sin(i * 0.37 + k * 1.3) + 0.3 * Math.cos(i * k))) }
}

async function create (app: FastifyInstance, body: object, headers: Record<string, string> = {}): Promise<any> {
  const res = await app.inject({ method: 'POST', url: '/v1/tasks', payload: body, headers })
  if (res.statusCode !== 201) throw new Error(`create: ${res.statusCode} ${res.body}`)
  return JSON.parse(res.body)
}

async function stateOf (app: FastifyInstance, id: string, optimizer = false): Promise<Buffer> {
  const res = await app.inject({ method: 'GET', url: `/v1/tasks/${id}/state${optimizer ? '?optimizer=true' : ''}` })
  if (res.statusCode !== 200) throw new Error(`state: ${res.statusCode} ${res.body}`)
  return res.rawPayload
}

async function step (app: FastifyInstance, id: string, k: number, options: object = {}): Promise<any> {
  const res = await app.inject({ method: 'POST', url: `/v1/tasks/${id}/loss`, payload: { inputs: { z: zOf(k) }, options } })
  if (res.statusCode !== 200) throw new Error(`step ${k}: ${res.statusCode} ${res.body}`)
  return JSON.parse(res.body)
}

const bitsEqual = (a: Float32Array, b: Float32Array): boolean => a.length === b.length && Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength))

t.test('lifecycle: create, list, inspect, evaluate, delete', async t => {
  const { app } = await testServer(t, { dataDir: tmpDir(t) })
  const res = await app.inject({ method: 'POST', url: '/v1/tasks', payload: { kind: 'cpc', config: CONFIG, seed: 3, optimizer: { name: 'sgd', lr: 0.1 } } })
  t.equal(res.statusCode, 201)
  const info = JSON.parse(res.body)
  t.match(info.id, /^t_[a-z2-7]{20}$/)
  t.equal(res.headers.location, `/v1/tasks/${info.id}`)
  t.same(info.config, { ...CONFIG, embed_scale: 0.1, step_weighting: 'bolts' }, 'defaults filled in')
  t.same(info.optimizer, { name: 'sgd', lr: 0.1, momentum: 0, dampening: 0, weight_decay: 0, nesterov: false }, 'torch defaults')
  t.equal(info.step, 0)
  t.same(info.params.slice(0, 3), [{ name: 'target_cnn.weight', shape: [8, 4, 1, 1] }, { name: 'target_cnn.bias', shape: [8] }, { name: 'pred_cnn.weight', shape: [8, 4, 1, 1] }])
  t.equal(info.params.length, 4 + 8 * 2)

  const nt = await create(app, { kind: 'nt-xent', config: { temperature: 0.2 } })
  t.same(nt.params, [])
  t.equal(nt.optimizer, null)
  const list = JSON.parse((await app.inject({ method: 'GET', url: '/v1/tasks' })).body)
  t.same(list.tasks.map((x: any) => x.id).sort(), [info.id, nt.id].sort())
  t.same(JSON.parse((await app.inject({ method: 'GET', url: `/v1/tasks/${info.id}` })).body), info)

  // a stateless-kind instance answers like POST /v1/loss/{kind} with its stored config
  const fixture = loadFixtures().find(f => f.kind === 'nt-xent')!
  const inputs = fixture.request.inputs
  const viaTask = await app.inject({ method: 'POST', url: `/v1/tasks/${nt.id}/loss`, payload: { inputs } })
  const viaLoss = await app.inject({ method: 'POST', url: '/v1/loss/nt-xent', payload: { inputs, config: { temperature: 0.2 } } })
  t.equal(viaTask.statusCode, 200)
  t.equal(JSON.parse(viaTask.body).loss, JSON.parse(viaLoss.body).loss)
  t.equal(JSON.parse(viaTask.body).step, 0)

  // msgpack both ways, step counted
  const mp = await app.inject({ method: 'POST', url: `/v1/tasks/${info.id}/loss`, headers: MSGPACK, payload: encode({ inputs: { z: msgpackTensor(zOf(0)) }, options: { param_grads: true } }) })
  t.equal(mp.statusCode, 200)
  const a = answerOf(mp)
  t.equal(a.step, 1)
  t.same(a.grads.z.shape, [2, 4, 5, 5])
  t.equal(Object.keys(a.param_grads).length, 20, 'param_grads when asked')
  t.equal(JSON.parse((await app.inject({ method: 'GET', url: `/v1/tasks/${info.id}` })).body).step, 1)
  const noUpdate = await step(app, info.id, 1, { update: false })
  t.equal(noUpdate.step, 1, 'update: false computes without a step')
  t.notOk('param_grads' in noUpdate)

  const del = await app.inject({ method: 'DELETE', url: `/v1/tasks/${info.id}` })
  t.equal(del.statusCode, 204)
  for (const [method, url] of [['GET', `/v1/tasks/${info.id}`], ['DELETE', `/v1/tasks/${info.id}`], ['GET', `/v1/tasks/${info.id}/state`], ['GET', '/v1/tasks/t_aaaaaaaaaaaaaaaaaaaa'], ['GET', '/v1/tasks/..%2F..%2Fetc']] as const) {
    const r = await app.inject({ method, url })
    t.equal(r.statusCode, 404, `${method} ${url}`)
    t.equal(JSON.parse(r.body).error.code, 'unknown_task')
  }
})

t.test('bad requests are 4xx with the code and the path', async t => {
  const { app } = await testServer(t, { dataDir: tmpDir(t), maxInstances: 3, maxInstanceBytes: 100_000 })
  const cpc = await create(app, { kind: 'cpc', config: CONFIG, optimizer: { name: 'adam' } })
  const nt = await create(app, { kind: 'nt-xent' })
  const cases: Array<[string, string, object, number, string, unknown[] | undefined]> = [
    ['POST', '/v1/tasks', { kind: 'nope' }, 404, 'unknown_kind', ['kind']],
    ['POST', '/v1/tasks', { kind: 'cpc', config: {} }, 400, 'invalid_config', ['config', 'num_input_channels']],
    ['POST', '/v1/tasks', { kind: 'cpc', config: CONFIG, optimizer: { name: 'adam', lr: -1 } }, 400, 'invalid_config', ['optimizer', 'lr']],
    ['POST', '/v1/tasks', { kind: 'cpc', config: CONFIG, optimizer: { name: 'rmsprop' } }, 400, 'invalid_config', ['optimizer', 'name']],
    ['POST', '/v1/tasks', { kind: 'nt-xent', optimizer: { name: 'sgd' } }, 400, 'invalid_config', ['optimizer']],
    ['POST', '/v1/tasks', { kind: 'cpc', config: CONFIG, id: 't_x' }, 400, 'invalid_body', []],
    ['POST', '/v1/tasks', { kind: 'cpc', config: { ...CONFIG, hidden_channels: 256 } }, 413, 'too_large', ['config']],
    ['POST', `/v1/tasks/${cpc.id}/loss`, { inputs: { z: zOf(0) }, config: CONFIG }, 400, 'invalid_body', ['config']],
    ['POST', `/v1/tasks/${cpc.id}/loss`, { inputs: { z: zOf(0) }, params: {} }, 400, 'invalid_body', ['params']],
    ['POST', `/v1/tasks/${cpc.id}/loss`, { inputs: { z: { ...zOf(0), shape: [2, 5, 5, 4] } } }, 400, 'shape_mismatch', ['inputs', 'z', 'shape']],
    ['POST', `/v1/tasks/${cpc.id}/loss`, { inputs: { z: { ...zOf(0), data: [null, ...zOf(0).data.slice(1)] } } }, 400, 'invalid_tensor', ['inputs', 'z', 'data', 0]],
    ['POST', `/v1/tasks/${cpc.id}/loss`, { inputs: {} }, 400, 'invalid_body', ['inputs', 'z']],
    ['POST', `/v1/tasks/${cpc.id}/loss`, { inputs: { z: zOf(0) }, options: { update: 'yes' } }, 400, 'invalid_body', ['options', 'update']],
    ['POST', `/v1/tasks/${nt.id}/loss`, { inputs: { out_1: { dtype: 'float32', shape: [2, 2], data: [1, 2, 3, 4] }, out_2: { dtype: 'float32', shape: [2, 2], data: [1, 2, 3, 4] } }, options: { update: true } }, 400, 'invalid_body', ['options', 'update']]
  ]
  for (const [method, url, payload, status, code, p] of cases) {
    const res = await app.inject({ method: method as 'POST', url, payload })
    const body = JSON.parse(res.body)
    t.equal(res.statusCode, status, `${url} ${JSON.stringify(payload).slice(0, 80)}: ${res.body.slice(0, 200)}`)
    t.equal(body.error?.code, code, `${url}: code`)
    if (p) t.same(body.error.path, p, `${url}: path`)
  }
  // JSON NaN is not valid JSON: a body with a non-finite value in msgpack
  const z = msgpackTensor(zOf(0))
  new Float32Array(z.data.buffer, z.data.byteOffset, 200)[7] = Infinity
  const nonFinite = await app.inject({ method: 'POST', url: `/v1/tasks/${cpc.id}/loss`, headers: MSGPACK, payload: encode({ inputs: { z } }) })
  t.equal(nonFinite.statusCode, 400)
  t.same(answerOf(nonFinite).error.path, ['inputs', 'z', 'data', 7])
  t.equal(JSON.parse((await app.inject({ method: 'GET', url: `/v1/tasks/${cpc.id}` })).body).step, 0, 'no failed call stepped')

  // the third instance fits, the fourth is one too many
  await create(app, { kind: 'nt-xent' })
  const over = await app.inject({ method: 'POST', url: '/v1/tasks', payload: { kind: 'nt-xent' } })
  t.equal(over.statusCode, 429)
  t.equal(JSON.parse(over.body).error.code, 'overloaded')
  t.match(JSON.parse(over.body).error.message, /--max-instances 3/)

  // state: media type, bad query
  const wrongType = await app.inject({ method: 'PUT', url: `/v1/tasks/${cpc.id}/state`, payload: { a: 1 } })
  t.equal(wrongType.statusCode, 415)
  const octetPost = await app.inject({ method: 'POST', url: '/v1/tasks', headers: OCTET, payload: Buffer.from('{}') })
  t.equal(octetPost.statusCode, 415)
  const badQuery = await app.inject({ method: 'GET', url: `/v1/tasks/${cpc.id}/state?optimizer=maybe` })
  t.equal(badQuery.statusCode, 400)
})

t.test('5 updating steps against torch.optim on Bolts CPCTask (Adam, SGD)', async t => {
  const { app } = await testServer(t, { dataDir: tmpDir(t) })
  const py = await hasPythonModules(['torch', 'safetensors'])
  const dir = tmpDir(t)
  const optimizers = [
    { name: 'adam', lr: 0.01, betas: [0.8, 0.99], eps: 1e-8, weight_decay: 0.01, amsgrad: true },
    { name: 'sgd', lr: 0.05, momentum: 0.9, dampening: 0, weight_decay: 0.001, nesterov: true }
  ]
  for (const optimizer of optimizers) {
    await t.test(optimizer.name, async t => {
      const info = await create(app, { kind: 'cpc', config: CONFIG, seed: 11, optimizer })
      const init = await stateOf(app, info.id)
      const losses: number[] = []
      for (let k = 0; k < 5; k++) {
        const a = await step(app, info.id, k)
        t.equal(a.step, k + 1)
        losses.push(a.loss)
      }
      const after = readSafetensors(await stateOf(app, info.id)).tensors
      if (!py.ok) {
        t.skip(`skipped: ${py.reason}`, async () => {})
        return
      }
      const initFile = path.join(dir, `${optimizer.name}-init.safetensors`)
      const outFile = path.join(dir, `${optimizer.name}-torch.safetensors`)
      fs.writeFileSync(initFile, init)
      const r = await python(TORCH_TRAJECTORY, JSON.stringify({ config: info.config, optimizer: info.optimizer, init: initFile, out: outFile, zs: [0, 1, 2, 3, 4].map(zOf), bench: path.join(ROOT, 'bench') }))
      t.ok(r.ok, r.reason ?? 'torch ran')
      if (!r.ok) return
      const ref = JSON.parse(r.stdout.toString()) as { losses: number[] }
      losses.forEach((l, k) => t.ok(Math.abs(l - ref.losses[k]) <= 1e-5 * Math.abs(ref.losses[k]), `loss ${k}: ${l} vs torch ${ref.losses[k]}`))
      const torch = readSafetensors(fs.readFileSync(outFile)).tensors
      const start = readSafetensors(init).tensors
      t.same(Object.keys(torch).sort(), Object.keys(after).sort(), 'the same state_dict() names')
      // Our gradients match PyTorch's to ~1e-6 relative (LOSSES.md tolerances are 1e-5 on
      // losses); the optimizers replay torch's float32 arithmetic exactly, so the only
      // difference is the gradient's rounding, carried through 5 steps (measured here: Adam
      // 3e-6 of the distance travelled and 7e-7 of the parameters; SGD with Nesterov momentum,
      // which adds up raw gradients, 4e-5 and 5e-8). Bounds with room for another CPU's
      // kernels: 2e-4 of what the 5 steps changed, 5e-6 of the parameters (tighter than the
      // 1e-5 of LOSSES.md for a single evaluation). A wrong update rule, a missing step or
      // a mis-mapped parameter would be off by orders of magnitude.
      let worstMove = 0
      let worstParam = 0
      for (const [name, ref] of Object.entries(torch)) {
        const ours = after[name].data
        let diff = 0; let move = 0; let norm = 0
        for (let i = 0; i < ours.length; i++) {
          diff += (ours[i] - ref.data[i]) ** 2
          move += (ref.data[i] - start[name].data[i]) ** 2
          norm += ref.data[i] ** 2
        }
        worstMove = Math.max(worstMove, Math.sqrt(diff / move))
        worstParam = Math.max(worstParam, Math.sqrt(diff / norm))
      }
      t.ok(worstMove <= 2e-4, `‖ours - torch‖ / ‖torch - initial‖ ≤ 2e-4 for every tensor (worst ${worstMove.toExponential(2)})`)
      t.ok(worstParam <= 5e-6, `‖ours - torch‖ / ‖torch‖ ≤ 5e-6 for every tensor (worst ${worstParam.toExponential(2)})`)
    })
  }
})

t.test('step k+1 == createOptimizer applied to the stateless route gradients at step k, bit for bit', async t => {
  const { app } = await testServer(t, { dataDir: tmpDir(t) })
  const spec = { name: 'adam', lr: 0.02 }
  const info = await create(app, { kind: 'cpc', config: CONFIG, seed: 5, optimizer: spec })
  const shapes = Object.fromEntries(info.params.map((p: any) => [p.name, p.shape]))
  const opt = createOptimizer(spec as any, shapes)
  const file = readSafetensors(await stateOf(app, info.id)).tensors
  const params: Record<string, Float32Array> = Object.fromEntries(Object.entries(file).map(([k, v]) => [k, v.data.slice()]))
  for (let k = 0; k < 3; k++) {
    const body = { config: info.config, inputs: { z: msgpackTensor(zOf(k)) }, params: Object.fromEntries(Object.entries(params).map(([n, d]) => [n, { dtype: 'float32', shape: shapes[n], data: new Uint8Array(d.slice().buffer) }])), options: { param_grads: true, gradients: false } }
    const res = await app.inject({ method: 'POST', url: '/v1/loss/cpc', headers: MSGPACK, payload: encode(body) })
    t.equal(res.statusCode, 200)
    const grads = Object.fromEntries(Object.entries(answerOf(res).param_grads).map(([n, g]: [string, any]) => [n, Float32Array.from(tensorValues(g))]))
    opt.step(params, grads)
    const a = await step(app, info.id, k)
    t.equal(a.step, k + 1)
    const exported = readSafetensors(await stateOf(app, info.id, true)).tensors
    t.ok(Object.entries(params).every(([n, d]) => bitsEqual(d, exported[n].data)), `step ${k + 1}: parameters bit-identical`)
    const st = opt.state()
    t.ok(Object.entries(st).every(([n, d]) => bitsEqual(d, exported[`optimizer.${n}`].data)), `step ${k + 1}: optimizer state bit-identical`)
  }
})

t.test('state export -> import round trips bit for bit; a reloaded server answers the same', async t => {
  const dataDir = tmpDir(t)
  const first = await testServer(t, { dataDir })
  const a = await create(first.app, { kind: 'cpc', config: CONFIG, seed: 1, optimizer: { name: 'adam', lr: 0.01 } })
  for (let k = 0; k < 2; k++) await step(first.app, a.id, k)
  const full = await stateOf(first.app, a.id, true)
  const b = await create(first.app, { kind: 'cpc', config: CONFIG, seed: 2, optimizer: { name: 'adam', lr: 0.01 } })
  const put = await first.app.inject({ method: 'PUT', url: `/v1/tasks/${b.id}/state`, headers: OCTET, payload: full })
  t.equal(put.statusCode, 200, put.body.slice(0, 200))
  t.equal(JSON.parse(put.body).step, 2, 'the step comes with the optimizer state')
  t.ok((await stateOf(first.app, b.id, true)).equals(full), 'export after import is the same file')
  const nextA = await step(first.app, a.id, 2)
  const nextB = await step(first.app, b.id, 2)
  t.equal(nextA.loss, nextB.loss, 'and the next step is the same')
  t.ok((await stateOf(first.app, a.id, true)).equals(await stateOf(first.app, b.id, true)), 'same state after it')

  // params only: the optimizer restarts
  const paramsOnly = await stateOf(first.app, a.id)
  const put2 = await first.app.inject({ method: 'PUT', url: `/v1/tasks/${b.id}/state`, headers: OCTET, payload: paramsOnly })
  t.equal(JSON.parse(put2.body).step, 0)
  t.ok((await stateOf(first.app, b.id)).subarray(8).toString('latin1').includes('"step":"0"'))

  // a bad file changes nothing
  const before = await stateOf(first.app, b.id, true)
  const bad = await first.app.inject({ method: 'PUT', url: `/v1/tasks/${b.id}/state`, headers: OCTET, payload: full.subarray(0, full.length - 4) })
  t.equal(bad.statusCode, 400)
  t.ok((await stateOf(first.app, b.id, true)).equals(before))

  const saved = await stateOf(first.app, a.id, true)
  await first.app.close()
  const second = await testServer(t, { dataDir, workers: 2 })
  t.ok((await stateOf(second.app, a.id, true)).equals(saved), 'restored from the checkpoint bit for bit')
  const again = await step(second.app, a.id, 3)
  t.equal(again.step, 4)
})

t.test('Python interop: a torch state_dict written by safetensors loads; our export loads in Python', async t => {
  const py = await hasPythonModules(['torch', 'safetensors'])
  if (!py.ok) {
    t.skip(`skipped: ${py.reason}`, async () => {})
    return
  }
  const { app } = await testServer(t, { dataDir: tmpDir(t) })
  const dir = tmpDir(t)
  const info = await create(app, { kind: 'cpc', config: CONFIG, optimizer: { name: 'sgd', lr: 0.1 } })
  const torchFile = path.join(dir, 'torch.safetensors')
  const oursFile = path.join(dir, 'ours.safetensors')
  const cfg = JSON.stringify({ config: info.config, bench: path.join(ROOT, 'bench'), file: torchFile, dtype: 'float32' })
  let r = await python(TORCH_SAVE, cfg)
  t.ok(r.ok, r.reason ?? 'saved')
  const fromTorch = fs.readFileSync(torchFile)
  const put = await app.inject({ method: 'PUT', url: `/v1/tasks/${info.id}/state`, headers: OCTET, payload: fromTorch })
  t.equal(put.statusCode, 200, put.body.slice(0, 300))
  const exported = await stateOf(app, info.id)
  const ref = readSafetensors(fromTorch).tensors
  const got = readSafetensors(exported).tensors
  t.ok(Object.entries(ref).every(([n, v]) => bitsEqual(v.data, got[n].data)), 'the torch values, bit for bit')
  fs.writeFileSync(oursFile, exported)
  r = await python(TORCH_LOAD, JSON.stringify({ config: info.config, bench: path.join(ROOT, 'bench'), ours: oursFile, ref: torchFile }))
  t.ok(r.ok, r.reason ?? 'loaded')
  t.same(JSON.parse(r.stdout.toString()), { strict_load: true, equal: true, metadata: { kind: 'cpc', step: '0' } })

  // float64 state_dict: converted to float32 on import
  r = await python(TORCH_SAVE, JSON.stringify({ config: info.config, bench: path.join(ROOT, 'bench'), file: torchFile, dtype: 'float64' }))
  t.ok(r.ok, r.reason ?? 'saved F64')
  const put64 = await app.inject({ method: 'PUT', url: `/v1/tasks/${info.id}/state`, headers: OCTET, payload: fs.readFileSync(torchFile) })
  t.equal(put64.statusCode, 200)
  const ref64 = readSafetensors(fs.readFileSync(torchFile)).tensors
  const got64 = readSafetensors(await stateOf(app, info.id)).tensors
  t.ok(Object.entries(ref64).every(([n, v]) => bitsEqual(v.data, got64[n].data)), 'F64 rounded to float32 like torch .float()')

  // a renamed key is a 400 naming it
  const renamed = readSafetensors(fromTorch).tensors
  const tensors = Object.fromEntries(Object.entries(renamed).map(([n, v]) => [n === 'context_cnn.blocks.1.4.bias' ? 'context_cnn.blocks.1.5.bias' : n, { dtype: 'F32' as const, shape: v.shape, data: v.data }]))
  const bad = await app.inject({ method: 'PUT', url: `/v1/tasks/${info.id}/state`, headers: OCTET, payload: writeSafetensors(tensors) })
  t.equal(bad.statusCode, 400)
  t.same(JSON.parse(bad.body).error.path, ['state', 'context_cnn.blocks.1.5.bias'])
})

t.test('WebSocket frames name a task instead of a kind', async t => {
  const { app, url } = await testServer(t, { dataDir: tmpDir(t), listen: true })
  const info = await create(app, { kind: 'cpc', config: CONFIG, optimizer: { name: 'sgd', lr: 0.1 } })
  const s = await openStream(url)
  for (let k = 0; k < 3; k++) s.ws.send(encode({ id: k, task: info.id, inputs: { z: msgpackTensor(zOf(k)) } }))
  s.ws.send(encode({ id: 'missing', task: 't_aaaaaaaaaaaaaaaaaaaa', inputs: { z: msgpackTensor(zOf(0)) } }))
  s.ws.send(encode({ id: 'config', task: info.id, config: CONFIG, inputs: { z: msgpackTensor(zOf(0)) } }))
  await s.next(5)
  t.same([0, 1, 2].map(k => s.answers.get(k)?.result?.step).sort(), [1, 2, 3], 'three steps, in arrival order on the instance')
  t.equal(s.answers.get('missing').error.code, 'unknown_task')
  t.equal(s.answers.get('config').error.code, 'invalid_body')
  t.same(s.answers.get('config').error.path, ['config'])
  s.ws.close()
})

// --- Python (torch, safetensors) helpers; bench/peer.py holds Bolts' CPCTask in torch. ---

const TORCH_TRAJECTORY = `
import json, sys
req = json.load(sys.stdin)
sys.path.insert(0, req['bench'])
import torch
from safetensors.torch import load_file, save_file
from peer import CPCTask
c, o = req['config'], req['optimizer']
task = CPCTask(c['num_input_channels'], c['target_dim'], c['embed_scale'], c['hidden_channels'], c['num_blocks'], c['step_weighting'])
task.load_state_dict(load_file(req['init']), strict=True)
if o['name'] == 'adam':
    opt = torch.optim.Adam(task.parameters(), lr=o['lr'], betas=tuple(o['betas']), eps=o['eps'], weight_decay=o['weight_decay'], amsgrad=o['amsgrad'], foreach=False)
else:
    opt = torch.optim.SGD(task.parameters(), lr=o['lr'], momentum=o['momentum'], dampening=o['dampening'], weight_decay=o['weight_decay'], nesterov=o['nesterov'], foreach=False)
losses = []
for z in req['zs']:
    zt = torch.tensor(z['data'], dtype=torch.float32).reshape(z['shape'])
    opt.zero_grad()
    loss, _ = task(zt)
    loss.backward()
    opt.step()
    losses.append(loss.item())
save_file({k: v.contiguous() for k, v in task.state_dict().items()}, req['out'])
print(json.dumps({'losses': losses}))
`

const TORCH_SAVE = `
import json, sys
req = json.load(sys.stdin)
sys.path.insert(0, req['bench'])
import torch
from safetensors.torch import save_file
from peer import CPCTask
c = req['config']
torch.manual_seed(1234)
task = CPCTask(c['num_input_channels'], c['target_dim'], c['embed_scale'], c['hidden_channels'], c['num_blocks'], c['step_weighting'])
if req['dtype'] == 'float64':
    task = task.double()
save_file(task.state_dict(), req['file'])
`

const TORCH_LOAD = `
import json, sys
req = json.load(sys.stdin)
sys.path.insert(0, req['bench'])
import torch
from safetensors import safe_open
from safetensors.torch import load_file
from peer import CPCTask
c = req['config']
task = CPCTask(c['num_input_channels'], c['target_dim'], c['embed_scale'], c['hidden_channels'], c['num_blocks'], c['step_weighting'])
ours = load_file(req['ours'])
task.load_state_dict(ours, strict=True)
ref = load_file(req['ref'])
with safe_open(req['ours'], framework='pt') as f:
    md = f.metadata()
equal = sorted(ours) == sorted(task.state_dict()) == sorted(ref) and all(torch.equal(ours[k], ref[k]) for k in ref)
print(json.dumps({'strict_load': True, 'equal': equal, 'metadata': {'kind': md['kind'], 'step': md['step']}}))
`
