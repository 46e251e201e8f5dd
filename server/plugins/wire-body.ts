// Body parsing (API.md "Content types"): msgpack (application/msgpack, application/x-msgpack)
// and JSON, both ending as one plain object that goes through the same envelope -> codec ->
// prepare pipeline; every other type is 415. The body limit applies before decoding (413).
// msgpack bodies are read by readBody below (one pre-sized buffer); JSON by Fastify.
import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { Readable } from 'node:stream'
import { LossServerError } from '../../src/errors.ts'
import { asBuffer, decode, encodeForWrite } from '../../src/wire/msgpack.ts'
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

/**
 * A msgpack answer as Fastify's payload: one buffer when small, else a stream of its parts
 * (every gradient a view of the worker's result memory) with an exact Content-Length, never
 * one answer-sized copy (encodeForWrite; docs/performance.md).
 */
export function msgpackPayload (reply: FastifyReply, value: unknown): Buffer | Readable {
  const { parts, byteLength } = encodeForWrite(value)
  if (parts.length === 1) return asBuffer(parts[0])
  reply.header('content-length', byteLength)
  return Readable.from(parts, { objectMode: false })
}

function tooLarge (limit: number): LossServerError {
  return new LossServerError('too_large', `the body is over the limit of ${limit} bytes`)
}

/**
 * Reads a request body into ONE buffer of its own. With a Content-Length (what every client
 * of ours sends) the buffer is allocated at that size up front and each chunk is copied into
 * place as it arrives: one copy of the body, instead of Fastify's list of chunks joined by
 * Buffer.concat at the end (two copies, and twice the body in memory at the peak). Declared
 * lengths over `limit` are 413 before a byte is read; a body that ends short of its
 * Content-Length is 400 invalid_body (Fastify's rules for parseAs: 'buffer'). The up-front
 * buffer comes from allocUnsafeSlow (malloc, not zeroed), so a Content-Length that is never
 * sent costs address space, not resident memory, and is bounded by the body limit.
 * Without a Content-Length (chunked), chunks are collected under the limit and joined once.
 */
export function readBody (payload: Readable, contentLength: string | undefined, limit: number, done: (err: Error | null, body?: Buffer) => void): void {
  const declared = contentLength === undefined ? NaN : Number(contentLength)
  if (declared > limit) { done(tooLarge(limit)); return }
  const sized = Number.isSafeInteger(declared) && declared >= 0
  const body = sized ? Buffer.allocUnsafeSlow(declared) : undefined
  const chunks: Buffer[] = []
  let received = 0
  let settled = false
  const finish = (err: Error | null, out?: Buffer): void => {
    if (settled) return
    settled = true
    payload.off('data', onData)
    payload.off('end', onEnd)
    payload.off('error', onError)
    done(err, out)
  }
  const onData = (chunk: Buffer | string): void => {
    const b = typeof chunk === 'string' ? Buffer.from(chunk) : chunk
    if (received + b.byteLength > limit) { finish(tooLarge(limit)); return }
    if (body) {
      if (received + b.byteLength > body.byteLength) { finish(new LossServerError('invalid_body', `the body is longer than its Content-Length of ${declared} bytes`)); return }
      body.set(b, received)
    } else {
      chunks.push(b)
    }
    received += b.byteLength
  }
  const onEnd = (): void => {
    if (body) {
      if (received !== body.byteLength) { finish(new LossServerError('invalid_body', `the body ended after ${received} bytes; its Content-Length said ${declared}`)); return }
      finish(null, body)
      return
    }
    const out = Buffer.allocUnsafeSlow(received)
    let at = 0
    for (const c of chunks) { out.set(c, at); at += c.byteLength }
    finish(null, out)
  }
  const onError = (err: Error & { statusCode?: number }): void => {
    if (!(typeof err.statusCode === 'number' && err.statusCode >= 400)) err.statusCode = 400
    finish(err)
  }
  payload.on('data', onData)
  payload.on('end', onEnd)
  payload.on('error', onError)
  payload.resume()
}

export default fp(async function wireBody (app: FastifyInstance, opts: { bodyLimit: number }) {
  app.removeAllContentTypeParsers()
  const jsonParse = app.getDefaultJsonParser('error', 'error') // refuses __proto__ / constructor.prototype keys
  app.addContentTypeParser('application/json', { parseAs: 'string', bodyLimit: opts.bodyLimit }, jsonParse)
  app.addContentTypeParser(['application/msgpack', 'application/x-msgpack'], (request, payload, done) => {
    const limit = typeof request.routeOptions.bodyLimit === 'number' ? request.routeOptions.bodyLimit : opts.bodyLimit
    readBody(payload, request.headers['content-length'], limit, (err, body) => {
      if (err || !body) { done(err ?? null, undefined); return }
      // a buffer of its own (never a slice of Node's shared slab): the tensors that view it
      // may move to a worker with it
      request.ownedBody = body.buffer as ArrayBuffer
      try {
        done(null, decode(body))
      } catch (e) {
        done(e as Error, undefined)
      }
    })
  })
}, { name: 'wire-body' })
