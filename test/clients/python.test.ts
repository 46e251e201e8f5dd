// The Python client (clients/python, package ssl_loss_client) against the real app: one
// server on a free port (tensorflow backend when its addon is built, else wasm; 1 worker),
// then `python3 -m unittest discover -s clients/python/tests -v` with SSL_LOSS_URL set and
// PYTHONPATH=clients/python (the package need not be installed). The run must pass; skipped
// Python tests are printed with their reasons, and where torch imports the adapter tests
// must have run, not skipped. The server has API keys, so every client is seen to send one. Without python3 and numpy, msgpack, requests, websocket-client
// the whole file is skipped with the reason (CI installs them in .ci/run).
import t from 'tap'
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { installedBackends } from '../../src/compute/backend.ts'
import { FIXTURE_DIR } from '../helpers/fixtures.ts'
import { hasPythonModules, findPython } from '../helpers/python.ts'
import { testServer } from '../helpers/server.ts'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..')
const CLIENT = path.join(ROOT, 'clients', 'python')

interface UnittestRun { code: number | null, output: string }

function unittest (exe: string, env: Record<string, string>): Promise<UnittestRun> {
  return runPython(exe, ['-m', 'unittest', 'discover', '-s', path.join(CLIENT, 'tests'), '-v'], env)
}

/** Runs python asynchronously (the server answering it lives in this process). */
function runPython (exe: string, args: string[], env: Record<string, string>): Promise<UnittestRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(exe, args, {
      cwd: ROOT,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe']
    })
    let output = ''
    child.stdout.setEncoding('utf8').on('data', d => { output += d })
    child.stderr.setEncoding('utf8').on('data', d => { output += d })
    child.on('error', reject)
    child.on('close', code => resolve({ code, output }))
  })
}

/** The unittest summary: "Ran N tests", then "OK", "OK (skipped=k)" or "FAILED (...)". */
function summary (output: string): { ran: number, ok: boolean, verdict: string, skipped: Array<{ test: string, reason: string }> } {
  const ran = Number(/^Ran (\d+) tests? in /m.exec(output)?.[1] ?? NaN)
  const verdict = /^(OK|FAILED)\b.*$/m.exec(output.split(/^Ran \d+ tests? in .*$/m).pop() ?? '')?.[0] ?? '(no verdict)'
  const skipped = [...output.matchAll(/^(\S+ \([\w.]+\)) \.\.\. skipped '(.*)'$/gm)].map(m => ({ test: m[1], reason: m[2] }))
  return { ran, ok: verdict.startsWith('OK'), verdict, skipped }
}

const needed = await hasPythonModules(['numpy', 'msgpack', 'requests', 'websocket'])
const exe = await findPython()

t.test('python client tests against a real server', { skip: needed.ok && exe ? false : needed.reason ?? 'no python3' }, async t => {
  const backend = installedBackends().includes('tensorflow') ? 'tensorflow' : 'wasm'
  // task instances persist to dataDir: a private one per run
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'ssl-loss-pyclient-'))
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }))
  // with API keys, so that every client is seen to send its key (test_auth.py checks refusals)
  const keys = ['python-client-key-a', 'python-client-key-b']
  const { url } = await testServer(t, { backend, listen: true, dataDir, apiKeys: keys, maxInFlightPerConnection: 8 })
  t.comment(`server on ${backend} at ${url}`)

  const run = await unittest(exe!, {
    SSL_LOSS_URL: url,
    SSL_LOSS_API_KEY: keys[0],
    SSL_LOSS_OTHER_KEY: keys[1],
    SSL_LOSS_FIXTURES: FIXTURE_DIR,
    PYTHONPATH: CLIENT,
    PYTHONDONTWRITEBYTECODE: '1'
  })
  const s = summary(run.output)
  for (const k of s.skipped) t.comment(`python test skipped: ${k.test}: ${k.reason}`)
  t.equal(run.code, 0, `unittest exit status (${s.verdict})`)
  t.ok(s.ok, `unittest verdict: ${s.verdict}`)
  t.ok(s.ran > 0, `tests ran: ${s.ran}`)
  if (!s.ok || run.code !== 0) t.comment(run.output.slice(-8000))

  const torch = await hasPythonModules(['torch'])
  if (torch.ok) {
    t.same(s.skipped.filter(k => k.test.includes('test_torch_adapter') || k.reason.includes('torch')), [], 'torch imports here: the adapter tests ran')
    t.match(run.output, /test_a_tiny_encoder_trains_with_the_gradients_of_in_process_torch .* \.\.\. ok/, 'the encoder trained through the adapter matched torch')
    const example = await runPython(exe!, [path.join(ROOT, 'examples', 'torch_train.py'), '--steps', '2', '--batch', '8', '--check'], { SSL_LOSS_URL: url, SSL_LOSS_API_KEY: keys[0] })
    t.equal(example.code, 0, 'examples/torch_train.py --check exits 0')
    t.match(example.output, /gradients match/, `the example's gradients equal in-process torch: ${example.output.trim().split('\n').pop()}`)
  } else {
    t.comment(`torch adapter tests and examples/torch_train.py skipped: ${torch.reason}`)
  }
  // the task routes and API keys exist: nothing but torch may skip
  t.same(s.skipped.filter(k => !k.reason.includes('torch')), [], 'nothing else skipped')
  t.match(run.output, /test_an_sgd_step_moves_the_parameters_by_minus_lr_times_the_gradient .* \.\.\. ok/, 'task instances tested')
})

t.test('summary parsing', async t => {
  const out = "test_a (m.C.test_a) ... ok\nsetUpClass (m.T) ... skipped 'no routes'\n\n----\nRan 3 tests in 0.5s\n\nOK (skipped=1)\n"
  t.same(summary(out), { ran: 3, ok: true, verdict: 'OK (skipped=1)', skipped: [{ test: 'setUpClass (m.T)', reason: 'no routes' }] })
  t.equal(summary('Ran 2 tests in 1s\n\nFAILED (failures=1)\n').ok, false)
  t.equal(summary('Traceback ...').ok, false)
})
