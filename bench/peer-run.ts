// Runs the PyTorch peer (bench/peer.py --workload NAME --json) and reads its JSON line.
// Exit 3 means torch is not importable: the bench then prints server numbers alone.
import { spawn } from 'node:child_process'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const PEER = path.join(path.dirname(fileURLToPath(import.meta.url)), 'peer.py')

export interface PeerResult {
  workload: string
  torch_version: string
  threads: number
  times_ms: number[]
  median_ms: number
  min_ms: number
  max_ms: number
  loss: number
  gflop: number
}

export type PeerOutcome = { ok: true, result: PeerResult } | { ok: false, missingTorch: boolean, message: string }

export async function runPeer (workload: string, repeats: number, warmup: number, threads: number): Promise<PeerOutcome> {
  const python = process.env.PYTHON ?? 'python3'
  const args = [PEER, '--workload', workload, '--repeats', String(repeats), '--warmup', String(warmup), '--threads', String(threads), '--json']
  return await new Promise(resolve => {
    const child = spawn(python, args, { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    child.stdout.on('data', (d: Buffer) => { out += d.toString() })
    child.stderr.on('data', (d: Buffer) => { err += d.toString() })
    child.on('error', e => resolve({ ok: false, missingTorch: true, message: `${python} could not run: ${e.message}` }))
    child.on('close', code => {
      const line = out.trim().split('\n').pop() ?? ''
      let parsed: any
      try { parsed = JSON.parse(line) } catch { parsed = undefined }
      if (code === 0 && parsed?.median_ms !== undefined) resolve({ ok: true, result: parsed as PeerResult })
      else resolve({ ok: false, missingTorch: code === 3, message: parsed?.error ?? `peer.py exited ${code}: ${err.trim().slice(-500)}` })
    })
  })
}
