#!/usr/bin/env node
// Builds the native addon of @tensorflow/tfjs-node (the `tensorflow` backend) without
// internet access to Google's storage.
//
// tfjs-node's own install script downloads a prebuilt libtensorflow; machines that only
// reach the npm registry and pip's package store cannot do that. The npm package ships
// the addon's C++ sources and binding.gyp, and the `tensorflow-cpu` wheel carries the
// TensorFlow C API (headers under tensorflow/include, libtensorflow_cc.so.2 and
// libtensorflow_framework.so.2). This script puts those where binding.gyp looks
// (deps/include, deps/lib) and runs node-gyp with the names node-pre-gyp would use,
// so that tfjs-node finds lib/napi-v8/tfjs_binding.node as if it had been downloaded.
//
// Idempotent: an addon that already loads and computes is left alone (pass --force to
// rebuild). Every step says what it did. Exit status 0 only when the backend works.
//
// Environment: TF_WHEEL=path/to/tensorflow_cpu-*.whl uses a wheel you already have;
// TF_WHEEL_VERSION (default 2.21.0) picks the version pip downloads;
// TF_CACHE_DIR (default .cache/tensorflow) is where the wheel and its extract are kept.
import { execFileSync, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const force = process.argv.includes('--force')
const wheelVersion = process.env.TF_WHEEL_VERSION ?? '2.21.0'
const cacheDir = path.resolve(root, process.env.TF_CACHE_DIR ?? '.cache/tensorflow')
const say = (msg) => console.log(`[setup:tensorflow] ${msg}`)
const fail = (msg) => { console.error(`[setup:tensorflow] FAILED: ${msg}`); process.exit(1) }

const require = createRequire(path.join(root, 'package.json'))
let pkgDir
try {
  pkgDir = path.dirname(require.resolve('@tensorflow/tfjs-node/package.json'))
} catch {
  fail('@tensorflow/tfjs-node is not in node_modules; run `npm ci` first (it is an optional dependency)')
}
const pkg = JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8'))
const napi = 8
const addon = path.join(pkgDir, 'lib', `napi-v${napi}`, 'tfjs_binding.node')
say(`tfjs-node ${pkg.version} at ${path.relative(root, pkgDir)}`)

// The check runs in a child process: a broken addon can abort the process that loads it.
function verify () {
  const probe = `
    const tf = require('@tensorflow/tfjs-node');
    const a = tf.randomNormal([256, 256]);
    const g = tf.grad(x => tf.conv2d(x, tf.ones([3, 3, 4, 2]), 1, 'same').sum());
    const dx = g(tf.ones([1, 5, 5, 4]));
    const t0 = process.hrtime.bigint();
    const n = 512, m = tf.randomNormal([n, n]);
    let s; for (let i = 0; i < 20; i++) { s = tf.matMul(m, m); s.dataSync(); s.dispose() }
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    console.log(JSON.stringify({ backend: tf.getBackend(), tf: tf.version.tfjs,
      conv_grad_sum: dx.sum().dataSync()[0], matmul_gflops: 20 * 2 * n ** 3 / secs / 1e9 }));
  `
  const r = spawnSync(process.execPath, ['-e', probe], { cwd: root, encoding: 'utf8', env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: '2' } })
  if (r.status !== 0) return { ok: false, why: (r.stderr || r.stdout || `exit ${r.status}`).trim().split('\n').slice(-3).join(' | ') }
  const out = JSON.parse(r.stdout.trim().split('\n').pop())
  // d/dx of sum(conv2d(x, ones 3x3x4x2, 'same')) on a 5x5x4 map: each input element is
  // seen by (rows covering it) x (cols covering it) outputs in each of the 2 output
  // channels; rows covering y in 0..4 are 2,3,3,3,2 (sum 13), so 4 * 2 * 13 * 13.
  const expected = 4 * 2 * 13 * 13
  return { ok: out.backend === 'tensorflow' && Math.abs(out.conv_grad_sum - expected) < 1e-3, out, expected }
}

if (!force && fs.existsSync(addon)) {
  const v = verify()
  if (v.ok) {
    say(`addon already built and working (${path.relative(root, addon)}); matmul ${v.out.matmul_gflops.toFixed(1)} GFLOP/s. Nothing to do (--force rebuilds).`)
    process.exit(0)
  }
  say(`addon present but not working (${v.why ?? JSON.stringify(v.out)}); rebuilding`)
}

// 1. The wheel.
fs.mkdirSync(cacheDir, { recursive: true })
let wheel = process.env.TF_WHEEL
if (wheel) {
  if (!fs.existsSync(wheel)) fail(`TF_WHEEL=${wheel} does not exist`)
  say(`using wheel ${wheel} (TF_WHEEL)`)
} else {
  const have = fs.readdirSync(cacheDir).find(f => f.startsWith(`tensorflow_cpu-${wheelVersion}-`) && f.endsWith('.whl'))
  if (have) {
    wheel = path.join(cacheDir, have)
    say(`using cached wheel ${path.relative(root, wheel)}`)
  } else {
    say(`downloading tensorflow-cpu==${wheelVersion} with pip (about 270 MB) into ${path.relative(root, cacheDir)}`)
    const pip = ['pip3', 'pip'].find(p => spawnSync(p, ['--version']).status === 0)
    if (!pip) fail('pip is not installed; install python3-pip or pass TF_WHEEL=path/to/wheel')
    const r = spawnSync(pip, ['download', '--no-deps', '--retries', '0', '--timeout', '60', '-d', cacheDir, `tensorflow-cpu==${wheelVersion}`], { stdio: 'inherit' })
    if (r.status !== 0) fail(`pip download tensorflow-cpu==${wheelVersion} failed (exit ${r.status})`)
    const got = fs.readdirSync(cacheDir).find(f => f.startsWith(`tensorflow_cpu-${wheelVersion}-`) && f.endsWith('.whl'))
    if (!got) fail('pip finished but no tensorflow_cpu wheel is in the cache directory')
    wheel = path.join(cacheDir, got)
  }
}

// 2. Headers and libraries into deps/ (python's zipfile: unzip is not on every machine).
const deps = path.join(pkgDir, 'deps')
fs.rmSync(deps, { recursive: true, force: true })
fs.mkdirSync(path.join(deps, 'lib'), { recursive: true })
fs.mkdirSync(path.join(deps, 'include'), { recursive: true })
const extract = `
import sys, zipfile, os, shutil
wheel, deps = sys.argv[1], sys.argv[2]
inc = 'tensorflow/include/'
keep = ('tensorflow/c/', 'tensorflow/core/platform/', 'xla/', 'tsl/')
libs = {'tensorflow/libtensorflow_cc.so.2', 'tensorflow/libtensorflow_framework.so.2'}
n = 0
with zipfile.ZipFile(wheel) as z:
    for info in z.infolist():
        name = info.filename
        if name.startswith(inc) and name[len(inc):].startswith(keep) and not name.endswith('/'):
            dest = os.path.join(deps, 'include', name[len(inc):])
        elif name in libs:
            dest = os.path.join(deps, 'lib', os.path.basename(name))
        else:
            continue
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        with z.open(info) as src, open(dest, 'wb') as out:
            shutil.copyfileobj(src, out, 1 << 22)
        n += 1
print(n)
`
const n = execFileSync('python3', ['-c', extract, wheel, deps], { encoding: 'utf8' }).trim()
say(`extracted ${n} files (C API headers, libtensorflow_cc.so.2, libtensorflow_framework.so.2) into ${path.relative(root, deps)}`)
// binding.gyp links -ltensorflow -ltensorflow_framework; the sonames stay the wheel's.
fs.symlinkSync('libtensorflow_cc.so.2', path.join(deps, 'lib', 'libtensorflow.so'))
fs.symlinkSync('libtensorflow_framework.so.2', path.join(deps, 'lib', 'libtensorflow_framework.so'))

// 3. node-gyp, with the names node-pre-gyp passes (package.json "binary").
let gyp
try {
  gyp = require.resolve('node-gyp/bin/node-gyp.js')
} catch {
  const npmRoot = execFileSync('npm', ['root', '-g'], { encoding: 'utf8' }).trim()
  gyp = path.join(npmRoot, 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js')
}
if (!fs.existsSync(gyp)) fail(`node-gyp not found (looked for ${gyp})`)
// Node's own headers when they are installed beside the binary (npm's `nodedir`), so that
// node-gyp does not try to download them.
const nodeDir = process.env.npm_config_nodedir || path.resolve(path.dirname(process.execPath), '..')
const gypArgs = fs.existsSync(path.join(nodeDir, 'include', 'node', 'node_api.h')) ? [`--nodedir=${nodeDir}`] : []
say(`building the addon with ${gyp} ${gypArgs.join(' ')}`)
const t0 = Date.now()
const b = spawnSync(process.execPath, [gyp, 'rebuild', ...gypArgs, '--module_name=tfjs_binding', `--module_path=${path.dirname(addon)}`, `--napi_build_version=${napi}`, `--jobs=${Math.max(1, (await import('node:os')).cpus().length)}`], { cwd: pkgDir, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' })
if (b.status !== 0) {
  console.error(b.stdout.split('\n').slice(-30).join('\n'))
  console.error(b.stderr.split('\n').slice(-30).join('\n'))
  fail(`node-gyp rebuild exited ${b.status}`)
}
if (!fs.existsSync(addon)) fail(`node-gyp succeeded but ${addon} is missing`)
say(`built ${path.relative(root, addon)} in ${((Date.now() - t0) / 1000).toFixed(1)} s`)

// 4. Prove it works.
const v = verify()
if (!v.ok) fail(`the addon does not work: ${v.why ?? JSON.stringify(v.out)} (expected conv gradient sum ${v.expected})`)
say(`backend 'tensorflow' works: tfjs ${v.out.tf}, conv2d gradient checked, matmul ${v.out.matmul_gflops.toFixed(1)} GFLOP/s`)
