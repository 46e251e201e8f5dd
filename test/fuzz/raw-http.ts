// A raw TCP client for what fetch and inject() cannot do: send half a request, send it slowly,
// pipeline, send bytes that are not HTTP, go away mid-answer. Reads back whatever the server
// wrote and how the connection ended.
import net from 'node:net'

export interface RawConnection {
  socket: net.Socket
  /** every byte the server wrote so far */
  received (): Buffer
  /** resolves when the server closed the connection (or reset it) */
  ended: Promise<{ bytes: Buffer, error?: string }>
  write (data: string | Buffer): Promise<void>
}

export async function connect (url: string): Promise<RawConnection> {
  const { hostname, port } = new URL(url)
  const socket = net.connect({ host: hostname, port: Number(port) })
  const chunks: Buffer[] = []
  socket.on('data', d => chunks.push(d))
  const ended = new Promise<{ bytes: Buffer, error?: string }>(resolve => {
    let error: string | undefined
    socket.on('error', err => { error = (err as NodeJS.ErrnoException).code ?? err.message })
    socket.on('close', () => resolve({ bytes: Buffer.concat(chunks), ...(error ? { error } : {}) }))
  })
  await new Promise<void>((resolve, reject) => { socket.once('connect', resolve); socket.once('error', reject) })
  return {
    socket,
    received: () => Buffer.concat(chunks),
    ended,
    write: data => new Promise<void>((resolve, reject) => socket.write(data, err => (err ? reject(err) : resolve())))
  }
}

/** The head of a POST with a body of `length` bytes. */
export function postHead (path: string, length: number, type = 'application/msgpack', extra = ''): string {
  return `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: ${type}\r\nContent-Length: ${length}\r\n${extra}\r\n`
}

export interface RawResponse { status: number, headers: Record<string, string>, body: Buffer }

/** Splits the bytes of one or more HTTP/1.1 responses (Content-Length framed only). */
export function parseResponses (bytes: Buffer): RawResponse[] {
  const out: RawResponse[] = []
  let at = 0
  while (at < bytes.length) {
    const headEnd = bytes.indexOf('\r\n\r\n', at)
    if (headEnd < 0) break
    const lines = bytes.subarray(at, headEnd).toString('latin1').split('\r\n')
    const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(lines[0])?.[1])
    const headers: Record<string, string> = {}
    for (const l of lines.slice(1)) {
      const i = l.indexOf(':')
      headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim()
    }
    const length = Number(headers['content-length'] ?? 0)
    const body = bytes.subarray(headEnd + 4, headEnd + 4 + length)
    out.push({ status, headers, body })
    at = headEnd + 4 + length
  }
  return out
}
