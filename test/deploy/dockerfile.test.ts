// Static checks of the Dockerfile, .dockerignore and docker/compose.yaml. No Docker engine
// runs on these machines, so the images are never built here: this test reads the files
// and holds them to what the issue asks (targets, bases, non-root, healthcheck, volume,
// GPU settings) and to the rule that every install and start step is docker/recipe.sh.
import t from 'tap'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import YAML from 'yaml'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..')

interface Instruction { op: string, args: string, line: number }
interface Stage { name: string, from: string, body: Instruction[] }

/** Instructions of a Dockerfile: comments dropped, `\` continuations joined. */
function instructions (text: string): Instruction[] {
  const out: Instruction[] = []
  let pending = ''
  let start = 0
  text.split('\n').forEach((raw, i) => {
    if (pending === '' && /^\s*#/.test(raw)) return
    if (pending === '' && raw.trim() === '') return
    if (pending === '') start = i + 1
    const line = raw.replace(/\s+$/, '')
    if (line.endsWith('\\')) { pending += line.slice(0, -1) + ' '; return }
    pending += line
    const m = /^\s*([A-Za-z]+)\s+(.*)$/s.exec(pending)
    if (m) out.push({ op: m[1].toUpperCase(), args: m[2].replace(/\s+/g, ' ').trim(), line: start })
    pending = ''
  })
  return out
}

function stages (all: Instruction[]): { args: Record<string, string>, stages: Stage[] } {
  const args: Record<string, string> = {}
  const out: Stage[] = []
  for (const ins of all) {
    if (ins.op === 'FROM') {
      const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(ins.args)
      if (!m) throw new Error(`line ${ins.line}: cannot read FROM ${ins.args}`)
      out.push({ name: m[2] ?? String(out.length), from: m[1], body: [] })
    } else if (out.length === 0 && ins.op === 'ARG') {
      const [k, v] = ins.args.split('=')
      args[k] = v
    } else if (out.length > 0) {
      out[out.length - 1].body.push(ins)
    }
  }
  return { args, stages: out }
}

const dockerfile = stages(instructions(fs.readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8')))
const stage = (name: string): Stage => {
  const s = dockerfile.stages.find(x => x.name === name)
  if (!s) throw new Error(`the Dockerfile has no stage ${name} (stages: ${dockerfile.stages.map(x => x.name).join(', ')})`)
  return s
}
/** The base image of a stage, ${ARG}s expanded and earlier stages followed. */
function baseImage (name: string): string {
  const from = stage(name).from.replace(/\$\{?([A-Z_]+)\}?/g, (_, k: string) => dockerfile.args[k] ?? `<${k}?>`)
  return dockerfile.stages.some(s => s.name === from) ? baseImage(from) : from
}
/** ENV values of a stage and the stages it is built FROM. */
function envOf (name: string): Record<string, string> {
  const s = stage(name)
  const inherited = dockerfile.stages.some(x => x.name === s.from) ? envOf(s.from) : {}
  const own: Record<string, string> = {}
  for (const ins of s.body.filter(i => i.op === 'ENV')) {
    for (const m of ins.args.matchAll(/([A-Z_][A-Z0-9_]*)=("[^"]*"|\S+)/g)) own[m[1]] = m[2].replace(/^"|"$/g, '')
  }
  return { ...inherited, ...own }
}
const ops = (name: string, op: string): Instruction[] => stage(name).body.filter(i => i.op === op)
const execForm = (ins: Instruction): string[] => JSON.parse(ins.args.replace(/^(--\S+\s+)*/, '').replace(/^CMD\s+/, '')) as string[]

t.test('two targets: cpu (node 20 slim, the default) and gpu (CUDA 11.2 + cuDNN 8 runtime)', async t => {
  const names = dockerfile.stages.map(s => s.name)
  t.ok(names.includes('cpu') && names.includes('gpu'), `stages ${names.join(', ')}`)
  t.equal(names[names.length - 1], 'cpu', 'cpu is the last stage, so a plain `docker build .` builds it')
  t.match(baseImage('cpu'), /^node:20-[a-z]+-slim$/, `cpu base ${baseImage('cpu')}`)
  t.match(baseImage('gpu'), /^nvidia\/cuda:11\.2\.\d+-cudnn8-runtime-ubuntu\d+\.\d+$/, `gpu base ${baseImage('gpu')} (libtensorflow 2.9.1 needs CUDA 11.2 and cuDNN 8)`)
  t.ok(dockerfile.stages.length > 2, 'multi-stage: build stages apart from the runtime images')
  for (const target of ['cpu', 'gpu']) {
    const runs = ops(target, 'RUN').map(r => r.args).join('\n')
    t.notMatch(runs, /\b(g\+\+|make|python3)\b/, `${target}: no compilers or python installed in the runtime image`)
    t.ok(ops(target, 'COPY').some(c => /--from=build-/.test(c.args)), `${target}: the app comes from a build stage`)
  }
})

t.test('runtime images: non-root, healthcheck on /health/ready, data volume, listen on all interfaces', async t => {
  for (const target of ['cpu', 'gpu']) {
    const users = ops(target, 'USER')
    t.equal(users.length, 1, `${target}: one USER`)
    t.notMatch(users[0]?.args, /^(root|0)(:|$)/, `${target}: USER ${users[0]?.args} is not root`)
    const env = envOf(target)
    t.equal(env.HOST, '0.0.0.0', `${target}: HOST=0.0.0.0 (the config's default, 127.0.0.1, is unreachable from outside the container)`)
    t.equal(env.PORT, '8080', `${target}: PORT`)
    t.equal(env.DATA_DIR, '/data', `${target}: DATA_DIR`)
    t.ok(ops(target, 'VOLUME').some(v => v.args.includes('"/data"') || v.args === '/data'), `${target}: /data is a volume`)
    t.ok(ops(target, 'EXPOSE').some(e => e.args === '8080'), `${target}: EXPOSE 8080`)
    const hc = ops(target, 'HEALTHCHECK')
    t.equal(hc.length, 1, `${target}: one HEALTHCHECK`)
    t.same(execForm(hc[0]), ['bash', 'docker/recipe.sh', target, 'health'], `${target}: HEALTHCHECK runs the recipe's health probe`)
    t.match(hc[0].args, /--start-period=\d+s/, `${target}: a start period covers the warm-up`)
    const cmd = ops(target, 'CMD')
    t.same(execForm(cmd[cmd.length - 1]), ['bash', 'docker/recipe.sh', target, 'start'], `${target}: CMD is the recipe's start (exec form, so SIGTERM reaches the server)`)
  }
  const recipe = fs.readFileSync(path.join(ROOT, 'docker', 'recipe.sh'), 'utf8')
  t.match(recipe, /health\)\s*step_health/, 'the recipe has the health mode')
  t.match(recipe, /\/health\/ready/, 'which probes /health/ready')
})

t.test('gpu: tfjs-node-gpu with its install script, allocator growth, tensorflow-gpu backend', async t => {
  const env = envOf('gpu')
  t.equal(env.TF_FORCE_GPU_ALLOW_GROWTH, 'true')
  t.equal(env.BACKEND, 'tensorflow-gpu')
  t.equal(envOf('cpu').BACKEND, 'tensorflow')
  const recipe = fs.readFileSync(path.join(ROOT, 'docker', 'recipe.sh'), 'utf8')
  t.match(recipe, /npm rebuild "\$NATIVE_PKG" --ignore-scripts=false/, 'the install script is allowed for the native package alone')
  t.match(recipe, /NATIVE_PKG=@tensorflow\/tfjs-node-gpu/)
  t.match(recipe, /libtensorflow\.so\.2\.9\.1/, 'the recipe checks that libtensorflow 2.9.1 arrived')
  // The version the recipe checks is the one the installed package downloads.
  const constants = path.join(ROOT, 'node_modules', '@tensorflow', 'tfjs-node-gpu', 'scripts', 'deps-constants.js')
  if (fs.existsSync(constants)) t.match(fs.readFileSync(constants, 'utf8'), /LIBTENSORFLOW_VERSION = '2\.9\.1'/, 'tfjs-node-gpu downloads libtensorflow 2.9.1')
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'))
  t.equal(pkg.optionalDependencies?.['@tensorflow/tfjs-node-gpu'], '4.22.0', 'package.json pins tfjs-node-gpu 4.22.0')
})

t.test('every install step of every stage is docker/recipe.sh', async t => {
  const runs = dockerfile.stages.flatMap(s => s.body.filter(i => i.op === 'RUN').map(r => ({ stage: s.name, ...r })))
  for (const r of runs) {
    // A command that runs npm, npx or node (not a path or user that contains the word).
    if (/(^|&&|;|\|)\s*(npm|npx|node)\s/.test(r.args) && !/docker\/recipe\.sh/.test(r.args)) {
      t.match(r.args, /^ln -s .*&& node --version && npm --version$/, `${r.stage} line ${r.line}: only the node/npm links and a version print run npm outside the recipe`)
    }
  }
  const recipeRuns = runs.filter(r => r.args.includes('docker/recipe.sh'))
  t.same(recipeRuns.map(r => `${r.stage}: ${r.args.replace(/^TF_ADDON_SOURCE=\S+ /, '').replace(/^bash docker\/recipe\.sh /, '')}`), [
    'build-cpu: cpu deps', 'build-cpu: cpu backend', 'build-gpu: gpu deps', 'build-gpu: gpu backend'
  ], 'deps, then backend, for each target')
  for (const b of ['build-cpu', 'build-gpu']) {
    const body = stage(b).body
    const firstRecipe = body.findIndex(i => i.op === 'RUN' && i.args.includes('docker/recipe.sh'))
    const copyAll = body.findIndex(i => i.op === 'COPY' && i.args === '. .')
    t.ok(firstRecipe >= 0 && copyAll > firstRecipe, `${b}: dependencies install before the sources are copied (layer cache)`)
    const copied = body.slice(0, firstRecipe).filter(i => i.op === 'COPY').map(i => i.args.split(' ').slice(0, -1)).flat()
    for (const f of copied) t.ok(fs.existsSync(path.join(ROOT, f)), `${b}: COPY ${f} exists in the repository`)
    t.ok(copied.includes('docker/recipe.sh') && copied.includes('package-lock.json') && copied.includes('.npmrc'), `${b}: the recipe, the lockfile and .npmrc are copied first`)
  }
})

t.test('.dockerignore keeps node_modules, .git and caches out, in the form the recipe reads', async t => {
  const lines = fs.readFileSync(path.join(ROOT, '.dockerignore'), 'utf8').split('\n').filter(l => l.trim() !== '' && !l.trim().startsWith('#'))
  for (const name of ['node_modules', '.git', '.cache', 'data']) t.ok(lines.includes(`**/${name}`), `**/${name} is ignored`)
  for (const l of lines) t.match(l, /^\*\*\/[^/!\s]+$/, `'${l}' is a **/name entry (docker/recipe.sh ci hands the names to tar)`)
})

t.test('compose: both targets, the GPU reservation, the data volume', async t => {
  const compose = YAML.parse(fs.readFileSync(path.join(ROOT, 'docker', 'compose.yaml'), 'utf8'), { merge: true }) as Record<string, any>
  t.same(Object.keys(compose.services).sort(), ['cpu', 'gpu'])
  for (const name of ['cpu', 'gpu']) {
    const s = compose.services[name]
    t.equal(s.build.target, name, `${name}: builds the ${name} target`)
    t.ok(fs.existsSync(path.resolve(ROOT, 'docker', s.build.context, s.build.dockerfile)), `${name}: the build context holds the Dockerfile`)
    t.equal(s.environment.HOST, '0.0.0.0', `${name}: HOST`)
    t.equal(s.environment.DATA_DIR, '/data', `${name}: DATA_DIR`)
    t.equal(s.environment.BACKEND, name === 'gpu' ? 'tensorflow-gpu' : 'tensorflow', `${name}: BACKEND`)
    const volume = (s.volumes as string[]).find(v => v.endsWith(':/data'))
    t.ok(volume && compose.volumes[volume.split(':')[0]] !== undefined, `${name}: /data is a named volume (${volume})`)
    t.ok((s.ports as string[]).some(p => p.endsWith(':8080')), `${name}: publishes the container's 8080`)
    t.equal(s.init, true, `${name}: an init process reaps the workers`)
  }
  const devices = compose.services.gpu.deploy.resources.reservations.devices
  t.same(devices, [{ driver: 'nvidia', count: 'all', capabilities: ['gpu'] }], 'gpu: the NVIDIA device reservation')
  t.same(compose.services.gpu.profiles, ['gpu'], 'gpu: behind a profile, so a plain `up` works without GPUs')
  t.equal(compose.services.gpu.environment.TF_FORCE_GPU_ALLOW_GROWTH, 'true')
})
