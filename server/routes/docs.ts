// GET /docs (a small self-contained page) and GET /docs/openapi.json (OpenAPI 3.1), both
// generated from the zod schemas in schemas/ and the kinds' own config/options schemas, so the
// document cannot drift from what the server validates.
import type { FastifyInstance } from 'fastify'
import { z } from 'zod'
import { commonOptions } from '../../schemas/options.ts'
import { evaluationRequest } from '../../schemas/request.ts'
import { evaluationResponse } from '../../schemas/response.ts'
import { errorBody } from '../../schemas/error.ts'
import { streamAnswer, streamFrame } from '../../schemas/stream.ts'
import { getKind, kindNames } from '../../src/tasks/registry.ts'

function jsonSchema (schema: z.ZodType, io: 'input' | 'output'): Record<string, unknown> {
  // Uint8Array (msgpack bin) has no JSON Schema; its .meta() says string/binary
  return z.toJSONSchema(schema, { target: 'draft-2020-12', unrepresentable: 'any', io, reused: 'inline' }) as Record<string, unknown>
}

const CONTENT = ['application/msgpack', 'application/x-msgpack', 'application/json']
const ERRORS: Record<string, string> = {
  400: 'the request cannot be computed (invalid_body, invalid_tensor, shape_mismatch, non_finite, invalid_config)',
  404: 'unknown_kind',
  413: 'too_large: body over --body-limit or a tensor over --max-elements',
  415: 'unsupported_media_type',
  429: 'overloaded: the queue is full (Retry-After)',
  503: 'not_ready, worker_failed, timeout (Retry-After)'
}

export function openApiDocument (): Record<string, unknown> {
  const content = (schema: Record<string, unknown>): Record<string, unknown> => Object.fromEntries(CONTENT.map(c => [c, { schema }]))
  const errorResponses = Object.fromEntries(Object.entries(ERRORS).map(([status, description]) => [status, { description, content: content(jsonSchema(errorBody, 'output')) }]))
  const paths: Record<string, unknown> = {}
  for (const name of kindNames()) {
    const kind = getKind(name)!
    const request = evaluationRequest.extend({
      config: kind.configSchema.optional(),
      options: commonOptions.extend(kind.optionsSchema.shape).optional()
    })
    paths[`/v1/loss/${name}`] = {
      post: {
        summary: `${name}: loss, terms and gradients`,
        description: `inputs: ${Object.entries(kind.inputs).map(([n, f]) => `${n} (${f === 'list' ? 'list of tensors' : 'tensor'})`).join(', ')}${kind.hasParams ? '; params: the task parameters' : ''}`,
        requestBody: { required: true, content: content(jsonSchema(request, 'input')) },
        responses: { 200: { description: 'the evaluation', content: content(jsonSchema(evaluationResponse, 'output')) }, ...errorResponses }
      }
    }
  }
  paths['/v1/stream'] = {
    get: {
      summary: 'WebSocket: binary msgpack frames, answers tagged by id in completion order',
      description: 'frame: ' + JSON.stringify(jsonSchema(streamFrame, 'input')) + '\nanswer: ' + JSON.stringify(jsonSchema(streamAnswer, 'output')),
      responses: { 101: { description: 'switching protocols' } }
    }
  }
  paths['/health/live'] = { get: { summary: 'liveness', responses: { 200: { description: 'the process answers' } } } }
  paths['/health/ready'] = { get: { summary: 'readiness: every worker loaded its backend and warmed up', responses: { 200: { description: 'ready' }, 503: { description: 'not_ready' } } } }
  paths['/metrics'] = { get: { summary: 'Prometheus text format', responses: { 200: { description: 'metrics' } } } }
  return {
    openapi: '3.1.0',
    info: { title: 'ssl-loss-server', version: '1', description: "Lightning Bolts' self-supervised losses and their gradients" },
    paths
  }
}

const escape = (s: string): string => s.replace(/[&<>]/g, c => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;' })[c]!)

function page (doc: Record<string, unknown>): string {
  const rows = Object.entries(doc.paths as Record<string, Record<string, { summary: string, description?: string }>>)
    .flatMap(([path, ops]) => Object.entries(ops).map(([method, op]) => `<h2><code>${method.toUpperCase()} ${escape(path)}</code></h2><p>${escape(op.summary)}</p>${op.description ? `<p>${escape(op.description.slice(0, 400))}</p>` : ''}`))
  return `<!doctype html><html><head><meta charset="utf-8"><title>ssl-loss-server API</title></head><body>` +
    `<h1>ssl-loss-server API v1</h1><p>The full OpenAPI document: <a href="/docs/openapi.json">/docs/openapi.json</a> (load it in any OpenAPI viewer).</p>` +
    rows.join('\n') + '</body></html>'
}

export default async function docsRoutes (app: FastifyInstance): Promise<void> {
  let doc: Record<string, unknown> | undefined
  const get = (): Record<string, unknown> => (doc ??= openApiDocument())
  app.get('/docs', async (_request, reply) => reply.type('text/html; charset=utf-8').send(page(get())))
  app.get('/docs/openapi.json', async (_request, reply) => reply.type('application/json; charset=utf-8').send(JSON.stringify(get())))
}
