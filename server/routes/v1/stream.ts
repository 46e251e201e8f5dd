// GET /v1/stream (WebSocket): many evaluations over one connection (API.md "WebSocket stream").
// The per-connection logic is src/stream/session.ts; this wires it to a ws socket.
import type { FastifyInstance } from 'fastify'
import { StreamSession } from '../../../src/stream/session.ts'
import type { StreamFrameEnvelope } from '../../../schemas/stream.ts'

export default async function streamRoutes (app: FastifyInstance, opts: { maxInFlight: number }): Promise<void> {
  // `task` frames go to the instance (server/plugins/store.ts), as the caller's key sees it
  const handle = (frame: StreamFrameEnvelope, signal: AbortSignal, owner: string | null): Promise<unknown> => {
    if (frame.task !== undefined) return app.tasks.evaluate(frame.task, owner, frame, { form: 'msgpack', signal })
    const { config, inputs, params, options } = frame
    return app.evaluator.evaluate(frame.kind!, { config, inputs, params, options }, { form: 'msgpack', signal })
  }

  app.get('/stream', { websocket: true }, (socket, request) => {
    const session = new StreamSession({
      send: frame => socket.send(frame, { binary: true }),
      pause: () => socket.pause(),
      resume: () => socket.resume(),
      close: (code, reason) => socket.close(code, reason)
    }, (frame, signal) => handle(frame, signal, request.owner), {
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
