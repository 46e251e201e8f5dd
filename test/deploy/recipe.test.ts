// docker/recipe.sh, the image's install/health/start steps. Always: the script parses
// (bash -n), rejects bad arguments, and its health and smoke modes behave against a
// stand-in server (pass, wrong loss, bad exit status, crash before ready). With RUN_RECIPE=1
// or CI=true: the whole cpu recipe outside Docker (`docker/recipe.sh cpu ci`: a copy of the
// build context, npm ci --omit=dev, the tensorflow addon from the wheel, the real server,
// one nt-xent request, SIGTERM and exit 0). It is slow (minutes: it installs and compiles).
import t from 'tap'
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import http from 'node:http'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { FIXTURE_DIR } from '../helpers/fixtures.ts'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..')
const RECIPE = path.join(ROOT, 'docker', 'recipe.sh')
const FIXTURE = path.join(FIXTURE_DIR, 'nt_xent_small.json')
const FULL = process.env.RUN_RECIPE === '1' || process.env.CI === 'true'

interface Run { code: number | null, out: string }

function run (args: string[], env: Record<string, string> = {}, cwd = ROOT, timeoutMs = 120_000): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', args, { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs, killSignal: 'SIGKILL' })
    let out = ''
    child.stdout.setEncoding('utf8').on('data', d => { out += d })
    child.stderr.setEncoding('utf8').on('data', d => { out += d })
    child.on('error', reject)
    child.on('close', code => resolve({ code, out }))
  })
}

const tail = (s: string, n = 40): string => s.trim().split('\n').slice(-n).join('\n')

t.comment(FULL
  ? 'recipe: running the full cpu recipe (RUN_RECIPE=1 or CI=true): copy, npm ci --omit=dev, addon from the wheel, real server'
  : 'recipe: static checks and stand-in server only; the full cpu recipe runs with RUN_RECIPE=1 or CI=true')

t.test('the script parses and rejects bad arguments', async t => {
  const syntax = await run(['-n', RECIPE])
  t.equal(syntax.code, 0, `bash -n docker/recipe.sh: ${syntax.out}`)
  for (const args of [[], ['cpu'], ['tpu', 'start'], ['cpu', 'bake']]) {
    const r = await run([RECIPE, ...args])
    t.equal(r.code, 2, `recipe.sh ${args.join(' ')} exits 2`)
    t.match(r.out, /usage: docker\/recipe\.sh cpu\|gpu/, 'and prints the usage')
  }
  const source = await run([RECIPE, 'cpu', 'backend'], { TF_ADDON_SOURCE: 'carrier-pigeon' })
  t.equal(source.code, 1, 'an unknown TF_ADDON_SOURCE fails')
  t.match(source.out, /TF_ADDON_SOURCE must be download or wheel \(got 'carrier-pigeon'\)/)
})

t.test('health mode: 0 only when /health/ready answers 200', async t => {
  let status = 200
  const paths: string[] = []
  const server = http.createServer((req, res) => { paths.push(req.url ?? ''); res.writeHead(status); res.end() })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const port = String((server.address() as { port: number }).port)
  t.teardown(() => { server.close() })

  t.equal((await run([RECIPE, 'cpu', 'health'], { PORT: port })).code, 0, 'ready (200) -> 0')
  status = 503
  t.equal((await run([RECIPE, 'gpu', 'health'], { PORT: port })).code, 1, 'not ready (503) -> 1')
  t.same(paths, ['/health/ready', '/health/ready'], 'it asks /health/ready')
  await new Promise<void>(resolve => server.close(() => resolve()))
  t.equal((await run([RECIPE, 'cpu', 'health'], { PORT: port })).code, 1, 'nothing listening -> 1')
})

// A stand-in for server/start.ts: ready after a moment, answers the nt-xent POST with
// FAKE_LOSS, exits with FAKE_EXIT on SIGTERM, or crashes at start with FAKE_CRASH.
const STAND_IN = `
import http from 'node:http'
if (process.env.FAKE_CRASH) { console.error('stand-in: crashing at start'); process.exit(5) }
let ready = false
setTimeout(() => { ready = true }, 300)
const server = http.createServer((req, res) => {
  if (req.url === '/health/ready') { res.writeHead(ready ? 200 : 503); res.end(); return }
  if (req.method === 'POST' && req.url === '/v1/loss/nt-xent') {
    const chunks: Buffer[] = []
    req.on('data', c => chunks.push(c))
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8'))
      const ok = body.inputs?.out_1?.shape?.length === 2
      res.writeHead(ok ? 200 : 400, { 'content-type': 'application/json' })
      res.end(JSON.stringify(ok ? { loss: Number(process.env.FAKE_LOSS), meta: { backend: 'stand-in:' + process.env.BACKEND } } : { error: { code: 'invalid_body' } }))
    })
    return
  }
  res.writeHead(404); res.end()
})
server.listen(Number(process.env.PORT), process.env.HOST)
process.on('SIGTERM', () => server.close(() => process.exit(Number(process.env.FAKE_EXIT ?? 0))))
`

t.test('smoke mode against a stand-in server', async t => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'recipe-smoke-'))
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
  fs.mkdirSync(path.join(dir, 'docker'))
  fs.mkdirSync(path.join(dir, 'server'))
  fs.copyFileSync(RECIPE, path.join(dir, 'docker', 'recipe.sh'))
  fs.writeFileSync(path.join(dir, 'server', 'start.ts'), STAND_IN)
  // tsx for `node --import tsx`; the stand-in needs nothing else.
  fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'))
  const expected = JSON.parse(fs.readFileSync(FIXTURE, 'utf8')).expected.loss as number
  const smoke = (env: Record<string, string>): Promise<Run> =>
    run([path.join(dir, 'docker', 'recipe.sh'), 'cpu', 'smoke'], { SMOKE_FIXTURE: FIXTURE, READY_TIMEOUT: '60', FAKE_LOSS: String(expected), ...env }, dir)

  const good = await smoke({})
  t.equal(good.code, 0, `the right loss and exit 0 pass:\n${tail(good.out)}`)
  t.match(good.out, /smoke: POST \/v1\/loss\/nt-xent \(nt_xent_small\) -> 200, loss \S+ vs reference \S+ .*backend stand-in:tensorflow/, 'it reports the request, with BACKEND=tensorflow for the cpu target')
  t.match(good.out, /smoke: the server stopped with exit status 0/)

  const close = await smoke({ FAKE_LOSS: String(expected * (1 + 2e-5)) })
  t.equal(close.code, 0, 'a float32-sized difference (2e-5 relative) passes')

  const wrong = await smoke({ FAKE_LOSS: String(expected * 1.01) })
  t.equal(wrong.code, 1, 'a loss 1% off fails')
  t.match(wrong.out, /differs from the reference .* \(relative error 0\.01/)

  const badExit = await smoke({ FAKE_EXIT: '3' })
  t.equal(badExit.code, 1, 'a server that exits 3 after SIGTERM fails')
  t.match(badExit.out, /exited with status 3 after SIGTERM \(expected 0\)/)

  const crash = await smoke({ FAKE_CRASH: '1' })
  t.equal(crash.code, 1, 'a server that dies before it is ready fails')
  t.match(crash.out, /exited with status 5 before it was ready/)
  t.match(crash.out, /stand-in: crashing at start/, 'and the server log is shown')

  const noFixture = await smoke({ SMOKE_FIXTURE: path.join(dir, 'nope.json') })
  t.equal(noFixture.code, 1)
  t.match(noFixture.out, /smoke fixture .*nope\.json is missing/)
  t.same(fs.readdirSync(dir).sort(), ['docker', 'node_modules', 'server'], 'smoke leaves nothing behind in the tree')
})

if (FULL) {
  t.test('the full cpu recipe outside Docker: install from a copy, serve, one request, SIGTERM', async t => {
    const started = Date.now()
    const r = await run([RECIPE, 'cpu', 'ci'], { SMOKE_FIXTURE: FIXTURE }, ROOT, 570_000)
    t.comment(`docker/recipe.sh cpu ci: exit ${r.code} after ${((Date.now() - started) / 1000).toFixed(0)} s`)
    t.equal(r.code, 0, `docker/recipe.sh cpu ci exits 0:\n${tail(r.out, 60)}`)
    t.match(r.out, /deps: npm ci --omit=dev/)
    t.match(r.out, /backend 'tensorflow' works/, 'the addon was built and computes')
    t.match(r.out, /smoke: POST \/v1\/loss\/nt-xent \(nt_xent_small\) -> 200/, 'the real server answered the fixture request')
    t.match(r.out, /smoke: the server stopped with exit status 0/)
    t.match(r.out, /ci: cpu recipe passed/)
  })
}
