// Body parsing (API.md "Content types"): msgpack (application/msgpack, application/x-msgpack)
// and JSON, both ending as one plain object that goes through the same envelope -> codec ->
// prepare pipeline; every other type is 415. The body limit applies before decoding (413).
import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { decode } from '../../src/wire/msgpack.ts'
import { requestForm, responseForm, type WireForm } from '../../src/wire/content-type.ts'

declare module 'fastify' {
  interface FastifyRequest {
    /** the ArrayBuffer of a msgpack body that nothing else shares: its tensors may move to a worker */
    ownedBody?: ArrayBuffer
  }
}

/** The form of the answer: Accept, else the request's type, else JSON. */
export function answerForm (request: FastifyRequest): WireForm {
  return responseForm(request.headers.accept, requestForm(request.headers['content-type']) ?? 'json')
}

export default fp(async function wireBody (app: FastifyInstance, opts: { bodyLimit: number }) {
  app.removeAllContentTypeParsers()
  const jsonParse = app.getDefaultJsonParser('error', 'error') // refuses __proto__ / constructor.prototype keys
  app.addContentTypeParser('application/json', { parseAs: 'string', bodyLimit: opts.bodyLimit }, jsonParse)
  app.addContentTypeParser(['application/msgpack', 'application/x-msgpack'], { parseAs: 'buffer', bodyLimit: opts.bodyLimit }, (request, body, done) => {
    const buf = body as Buffer
    // Fastify concatenates the chunks into a fresh Buffer; above 4 KiB it is a buffer of its
    // own (below, a slice of Node's shared slab, which must never be transferred).
    if (buf.byteOffset === 0 && buf.byteLength === buf.buffer.byteLength && buf.buffer instanceof ArrayBuffer) request.ownedBody = buf.buffer
    try {
      done(null, decode(buf))
    } catch (err) {
      done(err as Error, undefined)
    }
  })
}, { name: 'wire-body' })
