// The WebSocket server (@fastify/websocket over ws) and the set of open stream sessions.
// maxPayload comes from the config: a bigger frame closes the connection with 1009.
// On close the sessions drain first (answer what is in flight, then close 1001), so a
// SIGTERM never cuts an answer off.
import fp from 'fastify-plugin'
import websocket from '@fastify/websocket'
import type { FastifyInstance } from 'fastify'
import type { StreamSession } from '../../src/stream/session.ts'

declare module 'fastify' {
  interface FastifyInstance {
    streams: Set<StreamSession>
  }
}

const CLOSE_GRACE_MS = 5000

export default fp(async function websocketPlugin (app: FastifyInstance, opts: { maxPayload: number }) {
  const streams = new Set<StreamSession>()
  app.decorate('streams', streams)
  await app.register(websocket, {
    options: { maxPayload: opts.maxPayload, perMessageDeflate: false },
    preClose: async function () {
      await Promise.all([...streams].map(s => s.drain()))
      // A drained stream has sent its last answers and a 1001 close; terminating its socket
      // now would cut off an answer still in the send buffer (megabytes of gradients), so wait
      // for the close handshakes, at most CLOSE_GRACE_MS. Clients that do not answer go then.
      const open = [...app.websocketServer.clients].filter(c => c.readyState !== c.CLOSED)
      let timer: NodeJS.Timeout | undefined
      await Promise.race([
        Promise.all(open.map(c => new Promise(resolve => c.once('close', resolve)))),
        new Promise(resolve => { timer = setTimeout(resolve, CLOSE_GRACE_MS) })
      ])
      clearTimeout(timer)
      for (const client of app.websocketServer.clients) client.terminate()
      await new Promise<void>(resolve => app.websocketServer.close(() => resolve()))
    }
  })
}, { name: 'websocket', dependencies: ['lifecycle'] })
