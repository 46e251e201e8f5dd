// The ssl-loss-server command. Usage and errors run main() in process (fast, exact output);
// the bin itself (bin/ssl-loss-server.mjs: tsx registered, then main) runs as a child
// process for --help, an unknown command, serve (answers /health/live, exits 0 on SIGTERM)
// and the state export -> import -> export round trip against a real server.
import t from 'tap'
import fs from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { main } from '../../src/cli/main.ts'
import type { CliIo } from '../../src/cli/io.ts'
import { LossClient } from '../../src/client/index.ts'
import { testServer, until } from '../helpers/server.ts'

const BIN = fileURLToPath(new URL('../../bin/ssl-loss-server.mjs', import.meta.url))

function captured (): CliIo & { out: string, err: string } {
  const io = { out: '', err: '', stdout: (s: string) => { io.out += s }, stderr: (s: string) => { io.err += s } }
  return io
}

async function runMain (argv: string[]): Promise<{ code: unknown, out: string, err: string }> {
  const io = captured()
  const code = await main(argv, io)
  return { code, out: io.out, err: io.err }
}

interface Child { code: number | null, signal: string | null, out: string, err: string }

/** Runs the bin to its end (at most 60 s). */
async function runBin (args: string[]): Promise<Child> {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  let err = ''
  child.stdout.on('data', d => { out += d })
  child.stderr.on('data', d => { err += d })
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000)
  const [code, signal] = await new Promise<[number | null, string | null]>(resolve => child.on('close', (c, s) => resolve([c, s])))
  clearTimeout(timer)
  return { code, signal, out, err }
}

t.test('--help of each command: its usage on stdout, exit 0', async t => {
  const cases: Array<[string[], string]> = [
    [['--help'], 'usage: ssl-loss-server [command]'],
    [['-h'], 'usage: ssl-loss-server [command]'],
    [['serve', '--help'], 'usage: ssl-loss-server [serve] [flags]'],
    [['--port', '9000', '--help'], 'usage: ssl-loss-server [serve] [flags]'],
    [['state', '--help'], 'usage: ssl-loss-server state export'],
    [['state', 'export', '--help'], 'usage: ssl-loss-server state export'],
    [['state', 'import', '-h'], 'ssl-loss-server state import']
  ]
  for (const [argv, head] of cases) {
    const r = await runMain(argv)
    t.equal(r.code, 0, `${argv.join(' ')}: exit 0`)
    t.ok(r.out.includes(head), `${argv.join(' ')}: stdout has '${head}'`)
    t.equal(r.err, '', `${argv.join(' ')}: nothing on stderr`)
  }
  const serve = await runMain(['serve', '--help'])
  t.match(serve.out, /--backend <BACKEND>/, 'serve --help lists the config flags')
})

t.test('unknown command or flag: usage on stderr, exit 2', async t => {
  const cases: Array<[string[], RegExp]> = [
    [['frobnicate'], /unknown command 'frobnicate'[\s\S]*usage: ssl-loss-server \[command\]/],
    [['serve', '--bogus'], /Unknown option '--bogus'[\s\S]*usage: ssl-loss-server \[serve\]/],
    [['--port', 'eighty'], /--port[\s\S]*usage: ssl-loss-server \[serve\]/],
    [['serve', '--backend', 'quantum'], /--backend[\s\S]*usage/],
    [['state'], /export or import[\s\S]*usage: ssl-loss-server state/],
    [['state', 'copy'], /unknown subcommand 'copy'/],
    [['state', 'export', '--bogus'], /Unknown option '--bogus'[\s\S]*usage: ssl-loss-server state/],
    [['state', 'import', '--optimizer', '--url', 'http://127.0.0.1:1', '--task', 'x', '-i', 'f'], /Unknown option '--optimizer'/],
    [['state', 'export', '--task', 'x', '-o', 'f'], /--url is required/],
    [['state', 'export', '--url', 'ftp://x', '--task', 'x', '-o', 'f'], /--url must be http\(s\):\/\/host:port, got 'ftp:\/\/x'/],
    [['state', 'export', '--url', 'http://127.0.0.1:1', '-o', 'f'], /--task is required/],
    [['state', 'export', '--url', 'http://127.0.0.1:1', '--task', 'x'], /-o FILE is required/],
    [['state', 'import', '--url', 'http://127.0.0.1:1', '--task', 'x'], /-i FILE is required/],
    [['state', 'export', 'stray', '--url', 'http://127.0.0.1:1'], /Unexpected argument 'stray'/]
  ]
  for (const [argv, err] of cases) {
    const r = await runMain(argv)
    t.equal(r.code, 2, `${argv.join(' ')}: exit 2`)
    t.match(r.err, err, `${argv.join(' ')}: stderr`)
    t.equal(r.out, '', `${argv.join(' ')}: nothing on stdout`)
  }
})

t.test('serve that cannot start (unusable data directory, port in use) exits 1 with one line naming why, no stack trace', async t => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-cli-'))
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
  const file = path.join(dir, 'a-file')
  fs.writeFileSync(file, 'x')
  const bad = await runBin(['serve', '--port', '0', '--backend', 'wasm', '--workers', '1', '--log-level', 'warn', '--data-dir', path.join(file, 'data')])
  t.equal(bad.code, 1)
  t.match(bad.err, /^ssl-loss-server: cannot start: the data directory .*a-file\/data \(--data-dir\) cannot be used \(ENOTDIR/)
  t.notMatch(bad.err, /\n\s+at /, 'no stack trace')

  const blocker = net.createServer()
  await new Promise<void>(resolve => blocker.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise(resolve => blocker.close(resolve)))
  const port = (blocker.address() as net.AddressInfo).port
  const busy = await runBin(['serve', '--port', String(port), '--backend', 'wasm', '--workers', '1', '--log-level', 'warn', '--data-dir', path.join(dir, 'data')])
  t.equal(busy.code, 1)
  t.match(busy.err, /ssl-loss-server: cannot start: listen EADDRINUSE/)
  t.notMatch(busy.err, /\n\s+at /, 'no stack trace')
})

t.test('the bin: --help exits 0, an unknown command 2, bench --bogus 2', async t => {
  const help = await runBin(['--help'])
  t.equal(help.code, 0)
  t.match(help.out, /^usage: ssl-loss-server \[command\]/)
  const unknown = await runBin(['frobnicate'])
  t.equal(unknown.code, 2)
  t.match(unknown.err, /unknown command 'frobnicate'/)
  t.equal(unknown.out, '')
  const bench = await runBin(['bench', '--bogus'])
  t.equal(bench.code, 2)
  t.match(bench.err, /Unknown option '--bogus'[\s\S]*usage: ssl-loss-server bench/)
})

t.test('serve: listens, answers /health/live, exits 0 on SIGTERM', async t => {
  const dataDir = t.testdir()
  const child = spawn(process.execPath, [BIN, 'serve', '--port', '0', '--backend', 'wasm', '--workers', '1', '--data-dir', dataDir], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  let err = ''
  child.stdout.on('data', d => { out += d })
  child.stderr.on('data', d => { err += d })
  const exited = new Promise<[number | null, string | null]>(resolve => child.on('close', (c, s) => resolve([c, s])))
  t.teardown(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') })
  // pino logs JSON lines on stdout; fastify's says where it listens
  await until(() => /listening at http:\/\/127\.0\.0\.1:\d+/.test(out) || child.exitCode !== null, 'the server to listen')
  const url = /listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(out)?.[1]
  t.ok(url, `a listen line on stdout (stderr: ${err})`)
  const res = await fetch(`${url}/health/live`)
  t.equal(res.status, 200)
  t.same(await res.json(), { status: 'live' })
  child.kill('SIGTERM')
  const [code, signal] = await exited
  t.equal(code, 0, 'exit 0')
  t.equal(signal, null)
  t.match(out, /SIGTERM: draining/)
})

t.test('state export -> import -> export: the same bytes', async t => {
  const dir = t.testdir()
  const { url } = await testServer(t, { listen: true, dataDir: path.join(dir, 'data') })
  const client = new LossClient({ url })
  const config = { num_input_channels: 4, target_dim: 8, hidden_channels: 8, num_blocks: 1 }
  const file = (name: string): string => path.join(dir, name)
  const z = new Float32Array(2 * 4 * 3 * 3).map((_, i) => Math.sin(i))
  const step = async (id: string, sign: number): Promise<void> => {
    await client.taskLoss(id, { inputs: { z: { shape: [2, 4, 3, 3], data: z.map(x => sign * x) } }, options: { update: true } })
  }

  await t.test('parameters: one cpc instance into another', async t => {
    const x = await client.createTask({ kind: 'cpc', config, seed: 7 })
    const y = await client.createTask({ kind: 'cpc', config, seed: 8 })
    const a = await runBin(['state', 'export', '--url', url, '--task', x.id, '-o', file('a.safetensors')])
    t.equal(a.code, 0, `export: ${a.err}`)
    t.match(a.err, /exported task .* bytes to /)
    const bytesA = fs.readFileSync(file('a.safetensors'))
    t.same(bytesA, Buffer.from(await client.exportState(x.id)), 'the file is what the server exports')
    t.not(Buffer.compare(Buffer.from(await client.exportState(y.id)), bytesA), 0, 'the other instance starts with other parameters (seed 8)')
    const imp = await runBin(['state', 'import', '--url', url, '--task', y.id, '-i', file('a.safetensors')])
    t.equal(imp.code, 0, `import: ${imp.err}`)
    t.equal(JSON.parse(imp.out).id, y.id, 'import prints the instance')
    const b = await runBin(['state', 'export', '--url', url, '--task', y.id, '-o', file('b.safetensors')])
    t.equal(b.code, 0)
    t.same(fs.readFileSync(file('b.safetensors')), bytesA, 're-export is byte for byte the imported file')
  })

  await t.test('--optimizer: parameters and Adam state of a stepped instance', async t => {
    const inst = await client.createTask({ kind: 'cpc', config, seed: 9, optimizer: { name: 'adam', lr: 0.01 } })
    await step(inst.id, 1) // the optimizer state is no longer zeros
    const common = ['--url', url, '--task', inst.id]
    const c = await runBin(['state', 'export', ...common, '--optimizer', '-o', file('c.safetensors')])
    t.equal(c.code, 0, `export --optimizer: ${c.err}`)
    const bytesC = fs.readFileSync(file('c.safetensors'))
    t.ok(bytesC.includes(Buffer.from('optimizer.step')), 'optimizer.* tensors in the file')
    t.ok(bytesC.byteLength > (await client.exportState(inst.id)).byteLength, 'larger than the parameters alone')
    await step(inst.id, -1)
    t.equal((await client.getTask(inst.id)).step, 2)
    const imp = await runBin(['state', 'import', ...common, '-i', file('c.safetensors')])
    t.equal(imp.code, 0, `import: ${imp.err}`)
    t.equal(JSON.parse(imp.out).step, 1, 'the step comes back with the optimizer state')
    const d = await runBin(['state', 'export', ...common, '--optimizer', '-o', file('d.safetensors')])
    t.equal(d.code, 0)
    t.same(fs.readFileSync(file('d.safetensors')), bytesC, 're-export is byte for byte the imported file')
  })

  await t.test('failures: exit 1 with the reason, no file written', async t => {
    const missing = await runBin(['state', 'export', '--url', url, '--task', 'no-such-task', '-o', file('e.safetensors')])
    t.equal(missing.code, 1)
    t.match(missing.err, /unknown_task \(HTTP 404\)/)
    t.notOk(fs.existsSync(file('e.safetensors')), 'no file written')
    t.same(fs.readdirSync(dir).filter(f => f.endsWith('.tmp')), [], 'no temporary file left')
    const unreadable = await runBin(['state', 'import', '--url', url, '--task', 'no-such-task', '-i', file('absent.safetensors')])
    t.equal(unreadable.code, 1)
    t.match(unreadable.err, /ENOENT/)
  })
})
