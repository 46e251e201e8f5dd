// One WebSocket connection's state, without the socket (API.md "WebSocket stream"): frames
// in, answers out tagged by id in completion order, at most `maxInFlight` evaluations at a
// time. At the cap the connection stops reading (pause) so further frames wait in the
// socket and TCP pushes back, instead of piling up here. An error answers its own frame and
// keeps the connection; a dropped connection cancels what still waits for a worker.
import { LossServerError } from '../errors.ts'
import { asBuffer, decode, encode, encodeForWrite } from '../wire/msgpack.ts'
import { zodToError } from '../compute/evaluate.ts'
import { streamFrameEnvelope, type StreamFrameEnvelope } from '../../schemas/stream.ts'

/** What the session needs of its socket. */
export interface StreamSocket {
  send (frame: Buffer): void
  /**
   * One message written as consecutive fragments (RFC 6455 §5.4: the first frame binary,
   * the rest continuation frames, FIN on the last): large answers go out as views of the
   * gradient memory instead of being copied into one message-sized buffer first.
   */
  sendFragments? (parts: Uint8Array[]): void
  /** stop / restart reading frames from the network */
  pause (): void
  resume (): void
  close (code: number, reason: string): void
}

/**
 * Evaluates one validated frame; rejects with LossServerError for the client's mistakes.
 * `owned` is the frame's ArrayBuffer when nothing else views it (its tensors may move to a
 * worker with it, as an HTTP body does, instead of being copied).
 */
export type FrameHandler = (frame: StreamFrameEnvelope, signal: AbortSignal, owned?: ArrayBuffer) => Promise<unknown>

export interface StreamSessionOptions {
  maxInFlight: number
  /** called once per answer (metrics): the frame's kind or task id (or undefined), the HTTP-equivalent status */
  onAnswer?: (kind: string | undefined, status: number, seconds: number, bytesOut: number) => void
  /** an unexpected (non-LossServerError) failure, for the log; the client sees 'internal' */
  onInternalError?: (err: unknown) => void
}

type FrameId = string | number | null

export class StreamSession {
  private readonly inFlight = new Map<number, AbortController>()
  private readonly waiting: Array<{ data: Buffer, isBinary: boolean }> = []
  private seq = 0
  private paused = false
  private closed = false
  private draining?: { resolve: () => void }

  constructor (private readonly socket: StreamSocket, private readonly handler: FrameHandler, private readonly options: StreamSessionOptions) {}

  get active (): number { return this.inFlight.size }

  /** One frame from the client. Frames that arrive after pause() wait here (the socket's own buffer). */
  onFrame (data: Buffer, isBinary = true): void {
    if (this.closed) return
    if (this.draining) {
      this.answerError(idOf(data, isBinary), undefined, new LossServerError('not_ready', 'the server is shutting down; reconnect to another instance'), 0)
      return
    }
    if (this.inFlight.size >= this.options.maxInFlight) {
      this.waiting.push({ data, isBinary })
      this.pauseReading()
      return
    }
    this.start(data, isBinary)
  }

  /** The connection went away: cancel queued work, drop answers that are still coming. */
  close (): void {
    if (this.closed) return
    this.closed = true
    this.waiting.length = 0
    for (const c of this.inFlight.values()) c.abort()
    this.inFlight.clear()
    this.draining?.resolve()
  }

  /** Graceful end (SIGTERM): read nothing new, answer what is in flight, then close 1001. */
  drain (): Promise<void> {
    if (this.closed) return Promise.resolve()
    this.pauseReading()
    const done = new Promise<void>(resolve => { this.draining = { resolve } })
    // frames already read but not started are answered 'not_ready' by onFrame
    const waiting = this.waiting.splice(0)
    for (const w of waiting) this.onFrame(w.data, w.isBinary)
    this.maybeFinishDrain()
    return done
  }

  private start (data: Buffer, isBinary: boolean): void {
    const t0 = performance.now()
    let frame: StreamFrameEnvelope
    try {
      if (!isBinary) throw new LossServerError('invalid_body', 'frames are binary msgpack maps; got a text frame')
      const parsed = streamFrameEnvelope.safeParse(decode(data))
      if (!parsed.success) throw zodToError(parsed.error, [], 'invalid_body')
      frame = parsed.data
    } catch (err) {
      this.answerError(idOf(data, isBinary), undefined, err, t0)
      return
    }
    const key = ++this.seq
    const controller = new AbortController()
    this.inFlight.set(key, controller)
    this.handler(frame, controller.signal, ownedBuffer(data)).then(
      result => this.finish(key, frame, { id: frame.id, ok: true, result }, 200, t0),
      err => {
        if (!this.inFlight.has(key)) return
        this.inFlight.delete(key)
        this.answerError(frame.id, frame.kind ?? frame.task, err, t0)
        this.next()
      }
    )
  }

  private finish (key: number, frame: StreamFrameEnvelope, answer: unknown, status: number, t0: number): void {
    if (!this.inFlight.has(key)) return // the connection closed meanwhile
    this.inFlight.delete(key)
    let byteLength: number
    try {
      const encoded = encodeForWrite(answer)
      byteLength = encoded.byteLength
      const { parts } = encoded
      if (parts.length === 1) this.socket.send(asBuffer(parts[0]))
      else if (this.socket.sendFragments) this.socket.sendFragments(parts)
      else this.socket.send(Buffer.concat(parts, byteLength))
    } catch (err) {
      this.answerError(frame.id, frame.kind ?? frame.task, err, t0)
      this.next()
      return
    }
    this.options.onAnswer?.(frame.kind ?? frame.task, status, (performance.now() - t0) / 1000, byteLength)
    this.next()
  }

  private answerError (id: FrameId, kind: string | undefined, err: unknown, t0: number): void {
    if (this.closed) return
    let e: LossServerError
    if (err instanceof LossServerError) e = err
    else {
      this.options.onInternalError?.(err)
      e = new LossServerError('internal', 'internal error; the server log has the details')
    }
    const bytes = encode({ id, ok: false, error: e.toJSON() })
    this.socket.send(bytes)
    this.options.onAnswer?.(kind, e.status, t0 ? (performance.now() - t0) / 1000 : 0, bytes.byteLength)
  }

  /** A slot freed: start a waiting frame, or read from the socket again. */
  private next (): void {
    if (this.closed) return
    while (!this.draining && this.waiting.length > 0 && this.inFlight.size < this.options.maxInFlight) {
      const w = this.waiting.shift()!
      this.start(w.data, w.isBinary)
    }
    if (this.draining) this.maybeFinishDrain()
    else if (this.paused && this.waiting.length === 0 && this.inFlight.size < this.options.maxInFlight) {
      this.paused = false
      this.socket.resume()
    }
  }

  private pauseReading (): void {
    if (this.paused) return
    this.paused = true
    this.socket.pause()
  }

  private maybeFinishDrain (): void {
    if (!this.draining || this.inFlight.size > 0) return
    // read again so the client's half of the close handshake arrives (frames that come
    // meanwhile are answered not_ready by onFrame, or dropped once closed)
    if (this.paused) { this.paused = false; this.socket.resume() }
    this.socket.close(1001, 'server shutting down')
    this.close()
  }
}

/**
 * The frame's memory when the frame is the whole of it: a message ws reassembled from
 * fragments or read into a buffer of its own. A slice of a shared buffer (Node's small-buffer
 * pool, a socket read that also holds other bytes) is not owned and gets copied on the way
 * to a worker instead.
 */
function ownedBuffer (data: Buffer): ArrayBuffer | undefined {
  const buf = data.buffer
  return buf instanceof ArrayBuffer && data.byteOffset === 0 && data.byteLength === buf.byteLength ? buf : undefined
}

/** The id of an unreadable or invalid frame, when one can be read at all (else null). */
function idOf (data: Buffer, isBinary: boolean): FrameId {
  if (!isBinary) return null
  try {
    const v = decode(data) as { id?: unknown }
    const id = v?.id
    return typeof id === 'string' || (typeof id === 'number' && Number.isInteger(id)) ? id : null
  } catch {
    return null
  }
}
