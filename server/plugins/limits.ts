// Connection-level limits (issue 6/6 "Limits and security"), each from the config:
// - at most --max-connections open sockets (HTTP keep-alive and WebSocket together); Node's
//   net.Server drops the ones over the limit at accept, before they cost a request object;
// - slowloris: headers within --header-timeout, the whole request within --body-timeout
//   (Node's headersTimeout / requestTimeout; the clock stops once the body has arrived, so
//   compute time is not counted), idle keep-alive sockets closed after --keep-alive-timeout;
//   a connection that sends nothing at all is closed after --header-timeout too (Node starts
//   its clocks at the first byte, and a socket idle timeout would also cut long computations);
// - HTTP requests in flight on one connection (pipelining) at most
//   --max-in-flight-per-connection, the same cap the WebSocket stream applies; one more is
//   429 overloaded.
// Errors Node raises before a request exists (timeouts, malformed request lines, oversized
// headers) are answered with the API's error body by clientErrorHandler, and the router's own
// errors (undecodable URL, overlong path parameter) by frameworkErrors.
import http from 'node:http'
import type { Socket } from 'node:net'
import fp from 'fastify-plugin'
import type { FastifyError, FastifyHttpOptions, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { Counter, Gauge } from 'prom-client'
import type { Config } from '../../src/config.ts'
import { LossServerError } from '../../src/errors.ts'
import { sendError, toLossServerError } from './errors.ts'

type LimitConfig = Pick<Config, 'headerTimeoutMs' | 'bodyTimeoutMs' | 'keepAliveTimeoutMs'>

/**
 * Options for Fastify's http.createServer. Node checks its timeouts every
 * connectionsCheckingInterval (30 s by default), which would let a 1 s header timeout run
 * for 30 s: check at a quarter of the shorter timeout instead (at least every 50 ms, at most
 * every 5 s; the check walks the open connections, cheap at --max-connections 1024).
 */
export function httpServerOptions (config: LimitConfig): Pick<FastifyHttpOptions<http.Server>, 'http' | 'requestTimeout' | 'keepAliveTimeout' | 'clientErrorHandler' | 'frameworkErrors'> {
  // Node refuses headersTimeout > requestTimeout: the headers are part of the request
  const headersTimeout = Math.min(config.headerTimeoutMs, config.bodyTimeoutMs)
  const interval = Math.max(50, Math.min(5000, Math.floor(headersTimeout / 4)))
  return {
    http: { headersTimeout, requestTimeout: config.bodyTimeoutMs, connectionsCheckingInterval: interval },
    // Fastify sets server.requestTimeout from its own option (0, off, by default)
    requestTimeout: config.bodyTimeoutMs,
    keepAliveTimeout: config.keepAliveTimeoutMs,
    clientErrorHandler,
    frameworkErrors
  }
}

/**
 * Errors the router raises before a route runs (Fastify's frameworkErrors), which otherwise
 * answer with Fastify's own body: a URL that does not decode (400), a path parameter over
 * maxParamLength, 100 characters (Fastify's 414; no kind or id is that long: 404).
 */
function frameworkErrors (err: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  const path = request.url.split('?')[0].slice(0, 200)
  const mapped = err.code === 'FST_ERR_BAD_URL'
    ? new LossServerError('invalid_body', `the URL path '${path}' does not decode`)
    : err.code === 'FST_ERR_MAX_PARAM_LENGTH'
      ? new LossServerError('not_found', `no route ${request.method} ${path}: a path parameter is over 100 characters`)
      : toLossServerError(err)
  sendError(request, reply, mapped)
}

/** status, code and message of an error Node raised on a connection before a request existed */
function describeClientError (err: NodeJS.ErrnoException): LossServerError {
  // request_timeout (408), not 'timeout' (503, a slow worker): the client was too slow to send
  if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') return new LossServerError('request_timeout', 'the request (headers or body) did not arrive within the server\'s time limit')
  if (err.code === 'HPE_HEADER_OVERFLOW') return new LossServerError('headers_too_large', 'the request headers are over the size limit')
  return new LossServerError('invalid_body', `the request is not valid HTTP/1.1 (${err.code ?? 'parse error'})`)
}

/**
 * Fastify's clientErrorHandler: answers with the API error body (JSON, the request's type is
 * unknown here) and closes the socket, as Node's default handler does. `this` is the app.
 */
export function clientErrorHandler (this: FastifyInstance, err: NodeJS.ErrnoException, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return
  const { status, code, message } = describeClientError(err)
  this.log.debug({ code: err.code }, `client error: ${message}`)
  // as Node's own handler: write the answer unless one has started (a request that timed out
  // in its body already has a response object, whose headers are not yet sent)
  const pending = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage
  if (socket.writable && !pending?.headersSent) {
    const body = JSON.stringify({ error: { code, message } })
    socket.write(`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nContent-Type: application/json; charset=utf-8\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nX-Content-Type-Options: nosniff\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n${body}`)
  }
  socket.destroy()
}

export default fp(async function limits (app: FastifyInstance, opts: { config: Pick<Config, 'maxConnections' | 'maxInFlightPerConnection' | 'headerTimeoutMs'> }) {
  const { maxConnections, maxInFlightPerConnection, headerTimeoutMs } = opts.config
  const server = app.server
  server.maxConnections = maxConnections

  // a connection must start a request (or a WebSocket upgrade) within --header-timeout
  const firstRequest = new WeakMap<Socket, NodeJS.Timeout>()
  server.on('connection', (socket: Socket) => {
    const timer = setTimeout(() => {
      const err = Object.assign(new Error('no request within the header timeout'), { code: 'ERR_HTTP_REQUEST_TIMEOUT' })
      clientErrorHandler.call(app, err, socket)
    }, headerTimeoutMs)
    timer.unref()
    firstRequest.set(socket, timer)
    socket.once('close', () => clearTimeout(timer))
  })
  const started = (req: http.IncomingMessage): void => {
    const timer = firstRequest.get(req.socket)
    if (timer) clearTimeout(timer)
  }
  server.on('request', started)
  server.on('upgrade', started)
  const registry = app.metrics.registry
  const dropped = new Counter({ name: 'ssl_loss_connections_dropped_total', help: 'connections refused at accept: over --max-connections', registers: [registry] })
  server.on('drop', () => dropped.inc())
  /* eslint-disable no-new */
  new Gauge({
    name: 'ssl_loss_open_connections',
    help: 'open TCP connections (HTTP and WebSocket)',
    registers: [registry],
    async collect () {
      this.set(await new Promise<number>(resolve => server.getConnections((err, n) => resolve(err ? 0 : n))))
    }
  })

  // A WebSocket upgrade refused by any hook or route before @fastify/websocket takes it (401
  // from auth, 503 while draining, 429 here, 404 for a route that is not /v1/stream) is
  // answered on a socket Node has already handed over: nothing reads it any more, so it would
  // stay open for good (a descriptor and a --max-connections slot per attempt, and app.close()
  // waiting forever). The one place that releases it, whoever refused: the answer says
  // Connection: close, and once it is written the socket is ended, then destroyed when its
  // last byte has left (or after --header-timeout, for a peer that never reads).
  const refusedUpgrade = (request: FastifyRequest, reply: FastifyReply): boolean =>
    (request.raw as http.IncomingMessage & { upgrade?: boolean }).upgrade === true && reply.statusCode !== 101 // set by Node's parser, untyped
  app.addHook('onSend', async (request, reply) => {
    if (refusedUpgrade(request, reply)) reply.header('connection', 'close')
  })
  app.addHook('onResponse', async (request, reply) => {
    const socket = request.raw.socket
    if (!refusedUpgrade(request, reply) || !socket || socket.destroyed) return
    const release = (): void => { socket.destroy() }
    if (socket.writableFinished) return release()
    const timer = setTimeout(release, headerTimeoutMs).unref()
    socket.once('close', () => clearTimeout(timer))
    socket.once('finish', release)
    socket.end()
  })

  // HTTP pipelining: count the requests of each socket between arrival and the end of the answer
  const inFlight = new WeakMap<Socket, number>()
  app.addHook('onRequest', async (request, reply) => {
    const socket = request.raw.socket
    if (!socket) return // inject() has no real socket to share
    const n = (inFlight.get(socket) ?? 0) + 1
    inFlight.set(socket, n)
    reply.raw.once('close', () => inFlight.set(socket, (inFlight.get(socket) ?? 1) - 1))
    if (n > maxInFlightPerConnection) {
      return sendError(request, reply, new LossServerError('overloaded', `${n} requests in flight on this connection, over the limit of ${maxInFlightPerConnection}; wait for answers or open another connection`))
    }
  })
}, { name: 'limits', dependencies: ['errors', 'metrics'] })
