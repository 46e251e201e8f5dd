// Every failure becomes the API.md error body (STYLE.md principle 3): our LossServerError
// maps through statusOf(); Fastify's own errors (body too large, media type, JSON syntax,
// content length) are translated to our codes; anything else is a 500 'internal' whose body
// says nothing about the internals (the log has the details). Retryable codes carry
// Retry-After. Errors are encoded like answers: msgpack or JSON by Accept / request type.
import fp from 'fastify-plugin'
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { LossServerError, isRetryable, statusOf, type ErrorCode } from '../../src/errors.ts'
import { encode } from '../../src/wire/msgpack.ts'
import { MEDIA_TYPE } from '../../src/wire/content-type.ts'
import { answerForm } from './wire-body.ts'

/** Seconds a client should wait before retrying each retryable code. */
const RETRY_AFTER: Partial<Record<ErrorCode, number>> = { overloaded: 1, not_ready: 5, worker_failed: 1, timeout: 5, unavailable: 5 }

const FASTIFY_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'too_large',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'unsupported_media_type',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'invalid_body',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'invalid_body',
  FST_ERR_CTP_INVALID_JSON_BODY: 'invalid_body',
  FST_ERR_CTP_EMPTY_TYPE: 'unsupported_media_type',
  FST_ERR_CTP_INVALID_TYPE: 'unsupported_media_type'
}

/** Our error for anything thrown while answering a request. */
export function toLossServerError (err: unknown, info: { contentType?: string, bodyLimit?: number } = {}): LossServerError {
  if (err instanceof LossServerError) return err
  const e = err as FastifyError
  const mapped = e?.code ? FASTIFY_CODES[e.code] : undefined
  if (mapped === 'too_large') return new LossServerError('too_large', `the body is over the limit of ${info.bodyLimit ?? 'the configured number of'} bytes`)
  if (mapped === 'unsupported_media_type') return new LossServerError('unsupported_media_type', `content type '${info.contentType ?? '(none)'}' is not supported; send application/msgpack, application/x-msgpack or application/json`)
  if (mapped) return new LossServerError(mapped, e.message)
  if (e instanceof SyntaxError || (e?.statusCode === 400)) return new LossServerError('invalid_body', `the body is not valid: ${e.message}`)
  if (e?.statusCode === 404) return new LossServerError('not_found', e.message)
  if (e?.statusCode === 405) return new LossServerError('method_not_allowed', e.message)
  return new LossServerError('internal', 'internal error; the server log has the details')
}

export function sendError (request: FastifyRequest, reply: FastifyReply, err: LossServerError): FastifyReply {
  const retry = RETRY_AFTER[err.code]
  if (isRetryable(err.code) && retry !== undefined) reply.header('retry-after', String(retry))
  const form = answerForm(request)
  reply.code(statusOf(err.code)).type(MEDIA_TYPE[form])
  return reply.send(form === 'msgpack' ? encode(err.toBody()) : JSON.stringify(err.toBody()))
}

export default fp(async function errors (app: FastifyInstance, opts: { bodyLimit: number }) {
  app.setErrorHandler((err, request, reply) => {
    const mapped = toLossServerError(err, { contentType: request.headers['content-type'], bodyLimit: opts.bodyLimit })
    if (mapped.code === 'internal') request.log.error({ err }, 'internal error')
    else if (statusOf(mapped.code) >= 500) request.log.warn({ code: mapped.code }, mapped.message)
    return sendError(request, reply, mapped)
  })
  app.setNotFoundHandler((request, reply) => {
    sendError(request, reply, new LossServerError('not_found', `no route ${request.method} ${request.url.split('?')[0]}`))
  })
}, { name: 'errors' })
