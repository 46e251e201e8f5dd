// GET /v1/stream (WebSocket): many evaluations over one connection (API.md "WebSocket stream").
// The per-connection logic is src/stream/session.ts; this wires it to a ws socket.
import type { FastifyInstance } from 'fastify'
import { StreamSession } from '../../../src/stream/session.ts'
import type { StreamFrameEnvelope } from '../../../schemas/stream.ts'

export default async function streamRoutes (app: FastifyInstance, opts: { maxInFlight: number }): Promise<void> {
  // `task` frames go to the instance (server/plugins/store.ts), as the caller's key sees it
  const handle = (frame: StreamFrameEnvelope, signal: AbortSignal, owner: string | null, owned: ArrayBuffer | undefined): Promise<unknown> => {
    const opts = { form: 'msgpack' as const, signal, ...(owned ? { owned } : {}) }
    if (frame.task !== undefined) return app.tasks.evaluate(frame.task, owner, frame, opts)
    const { config, inputs, params, options } = frame
    return app.evaluator.evaluate(frame.kind!, { config, inputs, params, options }, opts)
  }

  app.get('/stream', { websocket: true }, (socket, request) => {
    const session = new StreamSession({
      send: frame => socket.send(frame, { binary: true }),
      sendFragments: parts => {
        const last = parts.length - 1
        parts.forEach((part, i) => socket.send(part, { binary: true, fin: i === last }))
      },
      pause: () => socket.pause(),
      resume: () => socket.resume(),
      close: (code, reason) => socket.close(code, reason)
    }, (frame, signal, owned) => handle(frame, signal, request.owner, owned), {
      maxInFlight: opts.maxInFlight,
      onAnswer: (kind, status, seconds, bytes) => {
        app.metrics.request(kind ?? 'unknown', 'ws', status, seconds)
        app.metrics.bytes('out', 'ws', bytes)
      },
      onInternalError: err => request.log.error({ err }, 'internal error in a stream frame')
    })
    app.streams.add(session)
    socket.on('message', (data: Buffer, isBinary: boolean) => {
      app.metrics.bytes('in', 'ws', data.byteLength)
      session.onFrame(data, isBinary)
    })
    socket.on('close', () => {
      session.close()
      app.streams.delete(session)
    })
  })
}
