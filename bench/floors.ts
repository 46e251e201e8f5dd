// What this machine allows before any of our code runs: the floors that end-to-end times and
// codec rates are bounded by. Measured in this process, best of `rounds`:
// - fresh memory: allocate N bytes and write them once (every page faults in; what each new
//   body, decoded tensor and read-back gradient costs) vs writing the same bytes again;
// - loopback HTTP: a bare node:http server and client (no Fastify, no msgpack, no worker)
//   moving N bytes up and N bytes down, each side reading into one pre-sized fresh buffer as
//   our server and client do. The server's e2e over HTTP cannot beat compute + this.
import http from 'node:http'
import type { AddressInfo } from 'node:net'

export interface Floors {
  bytes: number
  /** ms to allocate `bytes` and write them once; ms to write them again */
  freshTouchMs: number
  warmTouchMs: number
  /** ms for `bytes` up and `bytes` down over loopback HTTP with node:http alone */
  httpRoundTripMs: number
}

function touch (bytes: number): { fresh: number, warm: number } {
  let t = performance.now()
  const b = Buffer.allocUnsafeSlow(bytes)
  b.fill(1)
  const fresh = performance.now() - t
  t = performance.now()
  b.fill(2)
  return { fresh, warm: performance.now() - t }
}

function readInto (stream: http.IncomingMessage, size: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const out = Buffer.allocUnsafeSlow(size)
    let at = 0
    stream.on('data', (c: Buffer) => { out.set(c, at); at += c.byteLength })
    stream.on('end', () => resolve(out))
    stream.on('error', reject)
  })
}

async function httpRoundTrip (bytes: number, rounds: number): Promise<number> {
  const payload = Buffer.alloc(bytes, 1)
  const server = http.createServer((req, res) => {
    void readInto(req, Number(req.headers['content-length'])).then(() => {
      res.setHeader('content-length', bytes)
      res.end(payload)
    })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  const agent = new http.Agent({ keepAlive: true })
  let bestMs = Infinity
  try {
    for (let r = 0; r < rounds; r++) {
      const t0 = performance.now()
      await new Promise<void>((resolve, reject) => {
        const req = http.request({ host: '127.0.0.1', port, method: 'POST', agent, headers: { 'content-length': bytes } }, res => {
          readInto(res, bytes).then(() => resolve(), reject)
        })
        req.on('error', reject)
        req.end(payload)
      })
      bestMs = Math.min(bestMs, performance.now() - t0)
    }
  } finally {
    agent.destroy()
    await new Promise(resolve => server.close(resolve))
  }
  return bestMs
}

export async function measureFloors (bytes: number, rounds = 3): Promise<Floors> {
  const touches = Array.from({ length: rounds }, () => touch(bytes))
  return {
    bytes,
    freshTouchMs: Math.min(...touches.map(x => x.fresh)),
    warmTouchMs: Math.min(...touches.map(x => x.warm)),
    httpRoundTripMs: await httpRoundTrip(bytes, rounds)
  }
}
