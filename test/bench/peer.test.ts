// The PyTorch peer (bench/peer.py) must compute the same math as the server: every shared
// fixture goes through its --request mode and is compared with the tolerances of
// ../shared/spec/LOSSES.md "Fixtures". Then each small workload runs once and its JSON line
// is checked. Without python3 + torch the peer tests are skipped with the reason.
import t, { type Test } from 'tap'
import { spawn, spawnSync } from 'node:child_process'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { loadFixtures, relClose, relErrNorm, paramGradClose, type JsonTensor } from '../helpers/fixtures.ts'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..')
const PEER = path.join(ROOT, 'bench', 'peer.py')
// the interpreter: $PYTHON, else python3 (as test/helpers/python.ts does)
const PYTHON = process.env.PYTHON ?? 'python3'

interface Run { code: number | null, stdout: string, stderr: string }

function runPython (args: string[], stdin?: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(PYTHON, args, { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', d => { stdout += d })
    child.stderr.setEncoding('utf8').on('data', d => { stderr += d })
    child.on('error', reject)
    child.on('close', code => resolve({ code, stdout, stderr }))
    child.stdin.end(stdin ?? '')
  })
}

/** Why the peer cannot run here, or undefined when python3 and torch are present. */
function missingTorch (): string | undefined {
  const r = spawnSync(PYTHON, ['-c', 'import torch, numpy; print(torch.__version__)'], { encoding: 'utf8' })
  if (r.error !== undefined) return `${PYTHON} not runnable: ${r.error.message}`
  if (r.status !== 0) return `torch not importable by ${PYTHON}: ${r.stderr.trim().split('\n').pop() ?? ''}`
  return undefined
}

const skip = missingTorch()
if (skip !== undefined) t.comment(`PyTorch peer tests skipped: ${skip}`)

function lastJsonLine (out: string): any {
  const lines = out.trim().split('\n')
  return JSON.parse(lines[lines.length - 1])
}

function checkTensor (t: Test, got: JsonTensor | undefined, ref: JsonTensor, what: string): void {
  t.ok(got, `${what} present`)
  if (got === undefined) return
  t.same(got.shape, ref.shape, `${what} shape`)
  const err = relErrNorm(got.data, ref.data)
  t.ok(err <= 1e-4, `${what}: relative error ${err.toExponential(2)} <= 1e-4`)
}

t.test('peer --request reproduces every shared fixture', { skip: skip ?? false }, async t => {
  const fixtures = loadFixtures()
  t.ok(fixtures.length > 0, 'fixtures found')
  // one python process for all of them (a list of {kind, request}: one JSON line each)
  const r = await runPython([PEER, '--request', '-'], JSON.stringify(fixtures.map(f => ({ kind: f.kind, request: f.request }))))
  t.equal(r.code, 0, `peer exits 0 (stderr: ${r.stderr.slice(-500)})`)
  const lines = r.stdout.trim().split('\n')
  t.equal(lines.length, fixtures.length, 'one line per fixture')
  for (const [i, fx] of fixtures.entries()) {
    await t.test(`${fx.file} (${fx.kind})`, async t => {
      if (lines[i] === undefined || lines[i] === '') return t.fail('no answer')
      const got = JSON.parse(lines[i])
      const exp = fx.expected
      t.ok(relClose(got.loss, exp.loss, 1e-5), `loss ${got.loss} vs ${exp.loss}`)
      for (const [name, ref] of Object.entries(exp.terms ?? {})) {
        const refs = Array.isArray(ref) ? ref : [ref]
        const vals: number[] = Array.isArray(got.terms[name]) ? got.terms[name] : [got.terms[name]]
        t.equal(vals.length, refs.length, `terms.${name} length`)
        refs.forEach((v, i) => t.ok(relClose(vals[i], v, 1e-5), `terms.${name}[${i}] ${vals[i]} vs ${v}`))
      }
      for (const [name, ref] of Object.entries(exp.grads)) {
        if (Array.isArray(ref)) {
          t.equal(got.grads[name]?.length, ref.length, `grads.${name} length`)
          ref.forEach((g, i) => checkTensor(t, got.grads[name]?.[i], g, `grads.${name}[${i}]`))
        } else {
          checkTensor(t, got.grads[name], ref, `grads.${name}`)
        }
      }
      for (const s of exp.param_grads_sampled ?? []) {
        const g = got.param_grads?.[s.name]?.data?.[s.index]
        t.ok(typeof g === 'number' && paramGradClose(g, s.value), `param_grads.${s.name}[${s.index}] ${g} vs ${s.value}`)
      }
      if (fx.kind === 'cpc') {
        // the loss is the weighted sum of the reported step losses (LOSSES.md cpc "bolts")
        const steps: Array<{ offset: number, loss: number, weight: number }> = got.terms.steps
        const h = (fx.request.inputs.z as JsonTensor).shape[2]
        t.same(steps.map(s => s.offset), Array.from({ length: h - 2 }, (_, i) => i + 1), 'steps 1..h-2')
        t.same(steps.map(s => s.weight), steps.map(s => s.offset), 'bolts weights i')
        t.ok(relClose(steps.reduce((a, s) => a + s.weight * s.loss, 0), got.loss, 1e-5), 'loss = sum of weighted steps')
        t.ok(exp.param_grads_sampled !== undefined && exp.param_grads_sampled.length > 0, 'fixture samples parameter gradients')
      }
      if (fx.kind === 'feature-map-contrastive') {
        t.same(got.sampled.pairs, fx.request.options?.pairs, 'sampled.pairs = the given pairs')
        t.same(got.sampled.locations, fx.request.options?.locations, 'sampled.locations = the given locations')
      }
    })
  }
})

t.test('peer --request takes one API.md body with --kind', { skip: skip ?? false }, async t => {
  const fx = loadFixtures('amdim-nce')[0]
  const r = await runPython([PEER, '--request', '-', '--kind', fx.kind], JSON.stringify(fx.request))
  t.equal(r.code, 0, r.stderr.slice(-500))
  const got = lastJsonLine(r.stdout)
  t.ok(relClose(got.loss, fx.expected.loss, 1e-5), `loss ${got.loss} vs ${fx.expected.loss}`)
  checkTensor(t, got.grads.anchor, fx.expected.grads.anchor as JsonTensor, 'grads.anchor')
})

t.test('peer --literal (Bolts double loop) gives the same cpc result', { skip: skip ?? false }, async t => {
  const fx = loadFixtures('cpc')[0]
  const r = await runPython([PEER, '--request', '-', '--kind', 'cpc', '--literal'], JSON.stringify(fx.request))
  t.equal(r.code, 0, r.stderr.slice(-500))
  const got = lastJsonLine(r.stdout)
  t.ok(relClose(got.loss, fx.expected.loss, 1e-5), `literal loss ${got.loss} vs ${fx.expected.loss}`)
  checkTensor(t, got.grads.z, fx.expected.grads.z as JsonTensor, 'literal grads.z')
})

for (const workload of ['simclr', 'amdim-small', 'cpc-small']) {
  t.test(`workload ${workload} runs once and prints one JSON line`, { skip: skip ?? false }, async t => {
    const r = await runPython([PEER, '--workload', workload, '--repeats', '1', '--warmup', '0', '--json'])
    t.equal(r.code, 0, r.stderr.slice(-500))
    const lines = r.stdout.trim().split('\n')
    t.equal(lines.length, 1, 'exactly one line on stdout')
    const res = JSON.parse(lines[0])
    t.equal(res.workload, workload)
    t.match(res.torch_version, /^\d+\.\d+/)
    t.equal(res.threads, 2, 'torch.set_num_threads(2)')
    t.equal(res.times_ms.length, 1, 'one timing per repeat')
    for (const k of ['median_ms', 'min_ms', 'max_ms']) t.ok(res[k] > 0 && Number.isFinite(res[k]), `${k} > 0`)
    t.equal(res.median_ms, res.times_ms[0])
    t.ok(Number.isFinite(res.loss) && res.loss > 0, `finite positive loss ${res.loss}`)
    t.ok(res.gflop > 0, `gflop ${res.gflop}`)
  })
}

t.test('cost model of LOSSES.md "Cost" for the big workloads', { skip: skip ?? false }, async t => {
  // Computed by the peer without running the workload: import it and call the cost functions.
  const code = [
    'import sys, json; sys.path.insert(0, "bench"); import peer',
    'print(json.dumps([peer.gflop_fmct(200, 1280, [25, 49, 25], True), peer.gflop_cpc(128, 2048, 7, 7, 64, 256, 5),',
    '  peer.gflop_cpc(128, 2048, 7, 7, 64, 256, 5, literal=True), peer.gflop_nt_xent(256, 128)]))'
  ].join('\n')
  const r = await runPython(['-c', code])
  t.equal(r.code, 0, r.stderr.slice(-500))
  const [amdim, cpcOnce, cpcLiteral, simclr] = JSON.parse(r.stdout)
  t.ok(Math.abs(amdim - 61) < 0.5, `AMDIM CIFAR ${amdim} ~ 61 GFLOP (LOSSES.md)`)
  // once per step: 6 x (41.40 + 1.64 + 5.39) G multiply-adds; Bolts' literal loop repeats step i i times
  t.ok(Math.abs(cpcOnce - 290.6) < 0.5, `CPC v2 b 128, each step once: ${cpcOnce} GFLOP`)
  t.ok(Math.abs(cpcLiteral - 334) < 0.5, `CPC v2 b 128, literal double loop: ${cpcLiteral} GFLOP`)
  t.ok(Math.abs(simclr - 6 * 512 * 512 * 128 / 1e9) < 1e-9, `simclr ${simclr} GFLOP`)
})

t.test('errors: one JSON line with a reason and a non-zero exit', { skip: skip ?? false }, async t => {
  const bad = await runPython([PEER, '--workload', 'nope', '--json'])
  t.equal(bad.code, 2)
  t.match(lastJsonLine(bad.stdout).error, /unknown workload 'nope'/)
  const shape = await runPython([PEER, '--request', '-', '--kind', 'nt-xent'],
    JSON.stringify({ inputs: { out_1: { dtype: 'float32', shape: [2, 3], data: [1, 2, 3] }, out_2: { dtype: 'float32', shape: [2, 3], data: [1, 2, 3, 4, 5, 6] } } }))
  t.equal(shape.code, 2)
  t.match(lastJsonLine(shape.stdout).error, /inputs\.out_1: shape \[2, 3\] needs 6 elements, data has 3/)
  // torch missing: simulated by blocking the import; the peer says so and exits 3
  const noTorch = await runPython(['-c', `import sys, runpy; sys.modules['torch'] = None; sys.argv = ['peer.py', '--workload', 'simclr']; runpy.run_path(${JSON.stringify(PEER)}, run_name='__main__')`])
  t.equal(noTorch.code, 3)
  t.match(lastJsonLine(noTorch.stdout).error, /^torch not installed: /)
})
