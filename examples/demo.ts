// `npm run demo [-- flags]` (AMDIM) and `npm run demo:cpc [-- flags]` (cpc): trains the demo
// encoder (examples/encoder.ts) against a server and prints the loss falling. Without --url
// it starts a server in this process first (on a free port, data in a temporary folder), so
// the demo is one command.
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { BACKENDS, type BackendChoice } from '../src/compute/backend.ts'
import { firstLastMeans, trainAmdim, trainCpc, type DemoOptions } from './train.ts'

const ENCODER_BACKENDS = BACKENDS.filter(b => b !== 'wasm')

const USAGE = `usage: npm run demo -- [flags]        (AMDIM: feature-map-contrastive, maps 1x1 and 4x4, "01, 11")
       npm run demo:cpc -- [flags]    (cpc: encoder + a server-held cpc instance with Adam)
  --url URL        server to train against (default: start one in this process)
  --steps N        training steps (default 60)
  --batch B        images per step (default 16)
  --channels C     encoder channels (default 32)
  --lr X           Adam learning rate (default 0.005)
  --seed S         seed of data, encoder and the server's draws (default 1)
  --backend NAME   backend of the encoder here: ${ENCODER_BACKENDS.join(' | ')} (default auto:
                   tensorflow if its addon is built, else cpu; wasm has no convolution gradients)
  --api-key K      bearer key when the server has --api-keys
  --keep-task      cpc: leave the task instance on the server
  --task amdim|cpc which demo (the npm scripts set it)`

function fail (message: string): never {
  process.stderr.write(`${message}\n${USAGE}\n`)
  process.exit(2)
}

let values
try {
  values = parseArgs({
    options: {
      url: { type: 'string' }, steps: { type: 'string', default: '60' }, batch: { type: 'string', default: '16' },
      channels: { type: 'string', default: '32' }, lr: { type: 'string', default: '0.005' }, seed: { type: 'string', default: '1' },
      backend: { type: 'string', default: 'auto' }, 'api-key': { type: 'string' }, 'keep-task': { type: 'boolean' },
      task: { type: 'string', default: 'amdim' }, help: { type: 'boolean', short: 'h' }
    },
    strict: true,
    allowPositionals: false
  }).values
} catch (err) {
  fail((err as Error).message)
}
if (values.help) { process.stdout.write(USAGE + '\n'); process.exit(0) }

const positiveInt = (name: string, v: string): number => {
  const n = Number(v)
  if (!Number.isInteger(n) || n < 1) fail(`--${name} must be a positive integer, got '${v}'`)
  return n
}
if (values.task !== 'amdim' && values.task !== 'cpc') fail(`--task must be amdim or cpc, got '${values.task}'`)
if (!(ENCODER_BACKENDS as readonly string[]).includes(values.backend)) fail(`--backend must be one of ${ENCODER_BACKENDS.join(', ')}, got '${values.backend}'`)
const lr = Number(values.lr)
if (!(lr > 0)) fail(`--lr must be a number > 0, got '${values.lr}'`)
const seed = Number(values.seed)
if (!Number.isInteger(seed) || seed < 0 || seed > 0xFFFF) fail(`--seed must be an integer in [0, 65535], got '${values.seed}'`)

let url = values.url
let stop = async (): Promise<void> => {}
if (url === undefined) {
  // the real app (server/app.ts, what npm start runs), one worker, a throwaway data folder
  const { buildServer } = await import('../server/app.ts')
  const { makeConfig } = await import('../src/config.ts')
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-loss-demo-'))
  const app = await buildServer(makeConfig({ backend: 'auto', workers: 1, dataDir, logLevel: 'warn' }))
  await app.pool.ready()
  url = await app.listen({ host: '127.0.0.1', port: 0 })
  process.stderr.write(`started a server at ${url} (backend ${app.pool.backend()?.backend ?? '?'}); pass --url to use your own\n`)
  stop = async () => {
    await app.close()
    fs.rmSync(dataDir, { recursive: true, force: true })
  }
}

const opts: DemoOptions = {
  url,
  steps: positiveInt('steps', values.steps),
  batch: positiveInt('batch', values.batch),
  channels: positiveInt('channels', values.channels),
  lr,
  seed,
  backend: values.backend as BackendChoice,
  ...(values['api-key'] !== undefined ? { apiKey: values['api-key'] } : {}),
  ...(values['keep-task'] === true ? { keepTask: true } : {})
}
let code = 0
try {
  const r = values.task === 'cpc' ? await trainCpc(opts) : await trainAmdim(opts)
  const k = Math.min(5, Math.floor(r.losses.length / 2))
  const { first, last } = firstLastMeans(r.losses, k)
  process.stdout.write(`${values.task}: ${r.losses.length} steps, encoder on ${r.backend}${r.task !== undefined ? `, task ${r.task}${opts.keepTask ? ' (kept)' : ''}` : ''}\n`)
  process.stdout.write(`loss: mean of the first ${k} steps ${first.toFixed(4)}, of the last ${k} ${last.toFixed(4)} (${last < first ? 'fell' : 'rose'} by ${(100 * Math.abs(first - last) / Math.abs(first)).toFixed(1)}%)\n`)
} catch (err) {
  process.stderr.write(`demo failed: ${(err as Error).message}\n`)
  code = 1
} finally {
  await stop()
}
process.exit(code)
