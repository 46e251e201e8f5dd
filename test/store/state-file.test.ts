// Task state files (src/store/state-file.ts): checkpoint round trips bit for bit, every
// damage class refused whole, imports checked tensor by tensor with the key in the error;
// ids (src/store/ids.ts); atomic writes, quarantine and restore (src/store/checkpoint.ts,
// src/store/restore.ts).
import t, { type Test } from 'tap'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { LossServerError } from '../../src/errors.ts'
import { isTaskId, newTaskId } from '../../src/store/ids.ts'
import { paramShapes, type InstanceMeta } from '../../src/store/instance.ts'
import { decodeCheckpoint, decodeImport, encodeStateFile, type InstanceState } from '../../src/store/state-file.ts'
import { readSafetensors, writeSafetensors, type TensorToWrite } from '../../src/store/safetensors.ts'
import { checkpointPath, writeAtomic } from '../../src/store/checkpoint.ts'
import { restoreInstances } from '../../src/store/restore.ts'
import { initParams } from '../../src/tasks/cpc-params.ts'
import { createOptimizer } from '../../src/tasks/optimizers/index.ts'
import type { CpcConfig } from '../../schemas/kinds/cpc.ts'

const CONFIG = { num_input_channels: 3, target_dim: 4, embed_scale: 0.1, hidden_channels: 5, num_blocks: 1, step_weighting: 'bolts' } as const

function meta (over: Partial<InstanceMeta> = {}): InstanceMeta {
  return { id: newTaskId(), kind: 'cpc', config: { ...CONFIG }, optimizer: { name: 'adam', lr: 0.01, betas: [0.9, 0.999], eps: 1e-8, weight_decay: 0, amsgrad: false }, owner: null, created_at: '2026-01-01T00:00:00.000Z', seed: 5, ...over }
}

/** A state after two optimizer steps with made-up gradients. */
function stateOf (m: InstanceMeta): InstanceState {
  const params = Object.fromEntries(Object.entries(initParams(m.config as unknown as CpcConfig, m.seed)).map(([k, v]) => [k, v.data]))
  if (!m.optimizer) return { params, step: 0 }
  const shapes = Object.fromEntries(paramShapes(m.kind, m.config).map(s => [s.name, s.shape]))
  const opt = createOptimizer(m.optimizer, shapes)
  for (let k = 0; k < 2; k++) opt.step(params, Object.fromEntries(Object.entries(params).map(([n, p]) => [n, p.map((v, i) => Math.sin(i + k) * 0.1)])))
  return { params, optimizer: opt.state(), step: opt.steps }
}

const bits = (a: Float32Array): number[] => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length))

function throwsCode (t: Test, fn: () => unknown, code: string, pathStart: unknown[], what: string): void {
  try {
    fn()
    t.fail(`${what}: no error`)
  } catch (err) {
    t.ok(err instanceof LossServerError, `${what}: a LossServerError (${(err as Error).message})`)
    t.equal((err as LossServerError).code, code, `${what}: code`)
    t.same((err as LossServerError).path?.slice(0, pathStart.length), pathStart, `${what}: path ${JSON.stringify((err as LossServerError).path)}`)
  }
}

t.test('ids: 20 base32 characters after t_, unique, and the pattern refuses anything else', async t => {
  const ids = new Set(Array.from({ length: 2000 }, newTaskId))
  t.equal(ids.size, 2000)
  t.ok([...ids].every(isTaskId), 'every id passes the pattern')
  for (const bad of ['', 't_', 't_../../etc/passwd', 't_AAAAAAAAAAAAAAAAAAAA', 't_aaaaaaaaaaaaaaaaaaaa/', 't_aaaaaaaaaaaaaaaaaaa1', `${[...ids][0]}\n`, 42]) t.notOk(isTaskId(bad), JSON.stringify(bad))
  t.throws(() => checkpointPath('/tmp', '../x'), /not a task id/)
})

t.test('checkpoint: encode then decode gives the same description and the same bits', async t => {
  const m = meta({ owner: 'ab'.repeat(32) })
  const s = stateOf(m)
  const buf = encodeStateFile(m, s, { optimizer: true, checkpoint: true })
  const back = decodeCheckpoint(buf, m.id)
  t.same(back.meta, m)
  t.equal(back.state.step, 2)
  for (const [k, v] of Object.entries(s.params)) t.same(bits(back.state.params[k]), bits(v), k)
  for (const [k, v] of Object.entries(s.optimizer!)) t.same(bits(back.state.optimizer![k]), bits(v), `optimizer ${k}`)
  const file = readSafetensors(buf)
  t.same(file.tensors['optimizer.step'].shape, [], 'the step is a scalar, like torch')
  t.equal(file.metadata.kind, 'cpc')
  // the export leaves the private fields out
  const exported = readSafetensors(encodeStateFile(m, s, { optimizer: false, checkpoint: false }))
  t.notOk('owner' in exported.metadata || 'id' in exported.metadata, 'no id or owner in an export')
  t.notOk(Object.keys(exported.tensors).some(k => k.startsWith('optimizer.')), 'no optimizer tensors unless asked')
})

t.test('checkpoint: every damage is refused whole with a reason', async t => {
  const m = meta()
  const s = stateOf(m)
  const good = encodeStateFile(m, s, { optimizer: true, checkpoint: true })
  const refuse = (buf: Uint8Array, re: RegExp, what: string, id = m.id): void => {
    t.throws(() => decodeCheckpoint(buf, id), re, what)
  }
  for (const cut of [0, 7, 8, 100, good.length - 1]) refuse(good.subarray(0, cut), /truncated|beyond|trailing|out of bounds|JSON/, `truncated at ${cut} of ${good.length}`)
  refuse(good, /does not match the file name/, 'another id', newTaskId())
  const withMeta = (md: Record<string, string>, tensors?: Record<string, TensorToWrite>): Buffer => {
    const file = readSafetensors(good)
    const ts = tensors ?? Object.fromEntries(Object.entries(file.tensors).map(([k, v]) => [k, { dtype: 'F32' as const, shape: v.shape, data: v.data }]))
    return writeSafetensors(ts, { ...file.metadata, ...md })
  }
  refuse(withMeta({ config: '{"num_input_channels": 3,' }), /config is not JSON/, 'bad JSON metadata')
  refuse(withMeta({ config: JSON.stringify({ ...CONFIG, hidden_channels: 6 }) }), /must have shape/, 'metadata config disagrees with the tensors')
  refuse(withMeta({ step: '3' }), /disagrees with the optimizer's step 2/, 'metadata step disagrees')
  refuse(withMeta({ format: 'other' }), /format/, 'unknown format')
  refuse(withMeta({ kind: 'nope' }), /kind/, 'unknown kind')
  const file = readSafetensors(good)
  const dropped = Object.fromEntries(Object.entries(file.tensors).filter(([k]) => k !== 'context_cnn.blocks.0.2.weight').map(([k, v]) => [k, { dtype: 'F32' as const, shape: v.shape, data: v.data }]))
  refuse(withMeta({}, dropped), /missing tensor 'context_cnn.blocks.0.2.weight'/, 'a missing parameter')
  const nan = Object.fromEntries(Object.entries(file.tensors).map(([k, v]) => [k, { dtype: 'F32' as const, shape: v.shape, data: k === 'pred_cnn.bias' ? v.data.map(() => NaN) : v.data }]))
  refuse(withMeta({}, nan), /pred_cnn.bias.*NaN/, 'a NaN parameter')
})

t.test('import: names, shapes and dtypes are checked, the error names the key', async t => {
  const m = meta()
  const s = stateOf(m)
  const specs = paramShapes('cpc', m.config)
  const torchLike = (over: Record<string, TensorToWrite | undefined> = {}): Buffer => {
    const ts: Record<string, TensorToWrite> = {}
    for (const { name, shape } of specs) ts[name] = { dtype: 'F32', shape, data: s.params[name] }
    for (const [k, v] of Object.entries(over)) {
      if (v === undefined) delete ts[k]
      else ts[k] = v
    }
    return writeSafetensors(ts) // no metadata, as safetensors.torch.save_file(state_dict) writes it
  }
  const ok = decodeImport(torchLike(), m)
  t.equal(ok.hasOptimizer, false)
  t.equal(ok.step, 0, 'without optimizer tensors the optimizer starts afresh')
  for (const { name } of specs) t.same(bits(ok.params[name]), bits(s.params[name]), name)

  throwsCode(t, () => decodeImport(torchLike({ 'target_cnn.bias': undefined }), m), 'invalid_body', ['state', 'target_cnn.bias'], 'missing key')
  throwsCode(t, () => decodeImport(torchLike({ 'target_cnn.extra': { dtype: 'F32', shape: [1], data: Float32Array.of(1) } }), m), 'invalid_body', ['state', 'target_cnn.extra'], 'unexpected key')
  throwsCode(t, () => decodeImport(torchLike({ 'pred_cnn.weight': { dtype: 'F32', shape: [4, 3, 1, 2], data: new Float32Array(24) } }), m), 'shape_mismatch', ['state', 'pred_cnn.weight', 'shape'], 'wrong shape')
  throwsCode(t, () => decodeImport(torchLike({ 'pred_cnn.bias': { dtype: 'F32', shape: [4], data: Float32Array.of(0, Infinity, 0, 0) } }), m), 'non_finite', ['state', 'pred_cnn.bias', 'data', 1], 'infinite value')
  throwsCode(t, () => decodeImport(torchLike().subarray(0, 50), m), 'invalid_body', ['state'], 'truncated file')
  throwsCode(t, () => decodeImport(writeSafetensors({}, { kind: 'nt-xent' }), m), 'invalid_body', ['state', '__metadata__', 'kind'], 'another kind')
  throwsCode(t, () => decodeImport(torchLike({ 'optimizer.step': { dtype: 'F32', shape: [], data: Float32Array.of(1) } }), m), 'invalid_body', ['state', 'optimizer.target_cnn.weight.exp_avg'], 'optimizer step without its tensors')
  throwsCode(t, () => decodeImport(torchLike({ 'optimizer.step': { dtype: 'F32', shape: [] , data: Float32Array.of(0) } }), meta({ optimizer: null, id: m.id })), 'invalid_body', ['state', 'optimizer.step'], 'optimizer state for an instance without optimizer')

  // F16, BF16 and F64 are converted to float32
  const w = specs[0]
  for (const dtype of ['F16', 'BF16', 'F64'] as const) {
    const r = decodeImport(torchLike({ [w.name]: { dtype, shape: w.shape, data: s.params[w.name] } }), m)
    const diff = Math.max(...Array.from(r.params[w.name], (v, i) => Math.abs(v - s.params[w.name][i])))
    t.ok(diff <= (dtype === 'F64' ? 0 : dtype === 'F16' ? 1e-3 : 1e-2), `${dtype} converted (max diff ${diff})`)
  }
  // our own export with the optimizer imports back to the same step and bits
  const full = decodeImport(encodeStateFile(m, s, { optimizer: true, checkpoint: false }), m)
  t.equal(full.step, 2)
  for (const [k, v] of Object.entries(s.optimizer!)) t.same(bits(full.optimizer![k]), bits(v), k)
})

t.test('writeAtomic and restore: temp files removed, damaged files quarantined, the rest restored', async t => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-store-'))
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
  const good = meta()
  writeAtomic(checkpointPath(dir, good.id), encodeStateFile(good, stateOf(good), { optimizer: true, checkpoint: true }))
  const truncated = meta()
  const buf = encodeStateFile(truncated, stateOf(truncated), { optimizer: true, checkpoint: true })
  fs.writeFileSync(checkpointPath(dir, truncated.id), buf.subarray(0, buf.length - 10))
  const stateless = meta({ kind: 'nt-xent', config: { temperature: 0.5 }, optimizer: null })
  writeAtomic(checkpointPath(dir, stateless.id), encodeStateFile(stateless, { params: {}, step: 0 }, { optimizer: true, checkpoint: true }))
  fs.writeFileSync(path.join(dir, `.${good.id}.safetensors.tmp-123-0badf00d`), 'partial')
  fs.writeFileSync(path.join(dir, 'README'), 'not ours')
  t.same(fs.readdirSync(dir).filter(f => f.includes('.tmp-') && !f.startsWith('.')), [], 'writeAtomic leaves no temp file')

  const report = restoreInstances(dir)
  t.same(report.instances.map(i => i.meta.id).sort(), [good.id, stateless.id].sort())
  t.equal(report.instances.find(i => i.meta.id === good.id)!.step, 2)
  t.equal(report.quarantined.length, 1)
  t.equal(report.quarantined[0].file, `${truncated.id}.safetensors`)
  t.match(report.quarantined[0].reason, /trailing|out of bounds|beyond/)
  t.ok(fs.existsSync(report.quarantined[0].movedTo) && report.quarantined[0].movedTo.startsWith(path.join(dir, 'quarantine')), 'moved into quarantine/')
  t.notOk(fs.existsSync(checkpointPath(dir, truncated.id)), 'not left in place')
  t.same(report.removedTemp, [`.${good.id}.safetensors.tmp-123-0badf00d`])
  t.same(report.ignored, ['README'])
})
