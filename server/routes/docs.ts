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
import { createTaskRequest, stateQuery, taskInfo, taskList, taskLossRequest } from '../../schemas/task.ts'
import { getKind, kindNames } from '../../src/tasks/registry.ts'

type Json = Record<string, unknown>

/**
 * Named schemas (those with a .meta({ id })) shared by the whole document. zod puts them in
 * each schema's own `$defs` and refers to them as `#/$defs/Name`; inside an OpenAPI document
 * that pointer resolves against the document's root, where there is no `$defs`, so they move
 * to components.schemas and the references follow them. Input and output forms of one id
 * differ (defaults make fields optional on input): the second form gets the io as a suffix.
 */
class SchemaComponents {
  readonly schemas: Record<string, Json> = {}
  /** `${io} ${id}` -> the name it was placed under */
  private readonly chosen = new Map<string, string>()

  add (schema: z.ZodType, io: 'input' | 'output'): Json {
    // Uint8Array (msgpack bin) has no JSON Schema; its .meta() says string/binary
    const raw = z.toJSONSchema(schema, { target: 'draft-2020-12', unrepresentable: 'any', io, reused: 'inline' }) as Json
    const { $schema: _dialect, $defs, ...rest } = raw
    const defs = Object.entries(($defs ?? {}) as Record<string, Json>)
    // start from the names this id and io got before (their references already agree)
    const names = new Map(defs.map(([n]) => [n, this.chosen.get(`${io} ${n}`) ?? n]))
    const rewrite = (v: unknown): unknown => {
      if (Array.isArray(v)) return v.map(rewrite)
      if (v === null || typeof v !== 'object') return v
      return Object.fromEntries(Object.entries(v).map(([k, x]) => {
        if (k === '$ref' && typeof x === 'string' && x.startsWith('#/$defs/')) return [k, `#/components/schemas/${names.get(x.slice(8)) ?? x.slice(8)}`]
        return [k, rewrite(x)]
      }))
    }
    // A definition may keep its name when the document has none by that name, or the same
    // one with the same references. Renaming one changes the references of others: repeat
    // until nothing moves (each name moves at most once).
    for (let moved = true; moved;) {
      moved = false
      for (const [n, def] of defs) {
        const placed = this.schemas[names.get(n)!]
        if (placed === undefined || JSON.stringify(placed) === JSON.stringify(rewrite(def))) continue
        if (names.get(n) !== n) throw new Error(`two different ${io} schemas are named ${n}`)
        names.set(n, `${n}_${io}`)
        moved = true
      }
    }
    for (const [n, def] of defs) {
      this.schemas[names.get(n)!] = rewrite(def) as Json
      this.chosen.set(`${io} ${n}`, names.get(n)!)
    }
    return rewrite(rest) as Json
  }
}

const CONTENT = ['application/msgpack', 'application/x-msgpack', 'application/json']
const ERRORS: Record<string, string> = {
  400: 'the request cannot be computed (invalid_body, invalid_tensor, shape_mismatch, non_finite, invalid_config)',
  401: 'unauthorized: with --api-keys, a missing or wrong Authorization: Bearer <key> (WWW-Authenticate)',
  404: 'unknown_kind, unknown_task (an instance that is not the caller\'s)',
  413: 'too_large: body over --body-limit or a tensor over --max-elements',
  415: 'unsupported_media_type',
  429: 'overloaded: the queue is full (Retry-After)',
  503: 'not_ready, worker_failed, timeout, unavailable (a failed checkpoint) (Retry-After)'
}

type Content = (schema: Record<string, unknown>) => Record<string, unknown>

/** Only the listed statuses of `errors` (each operation documents the ones it can answer). */
const pick = (errors: Record<string, unknown>, ...statuses: number[]): Record<string, unknown> =>
  Object.fromEntries(statuses.map(s => [String(s), errors[String(s)]]))

/**
 * /v1/tasks* (API.md "Task instances", docs/task-instances.md), from schemas/task.ts. State
 * bodies are safetensors files (application/octet-stream), whose tensor names are the
 * state_dict() keys of Bolts' CPCTask, plus optimizer.* with ?optimizer=true.
 */
function taskPaths (jsonSchema: (schema: z.ZodType, io: 'input' | 'output') => Json, content: Content, errors: Record<string, unknown>): Record<string, unknown> {
  const id = { name: 'id', in: 'path', required: true, schema: jsonSchema(taskInfo.shape.id, 'input') }
  const info = (description: string): Record<string, unknown> => ({ description, content: content(jsonSchema(taskInfo, 'output')) })
  const octet = (description: string): Record<string, unknown> => ({ 'application/octet-stream': { schema: { type: 'string', contentMediaType: 'application/octet-stream', description } } })
  const stateFile = 'a safetensors file: float32 tensors named as the state_dict() keys of Bolts\' CPCTask (target_cnn.weight, ...), metadata kind, config, step, optimizer; optimizer.* tensors with the optimizer state'
  const taskLoss = evaluationResponse.extend({ step: z.number().int().min(0).describe('optimizer steps applied so far, this call\'s included') }).meta({ id: 'TaskLossResponse' })
  const optimizerParam = jsonSchema(stateQuery.shape.optimizer, 'input')
  return {
    '/v1/tasks': {
      post: {
        summary: 'create a task instance (server-held config; cpc: parameters and optimizer)',
        requestBody: { required: true, content: content(jsonSchema(createTaskRequest, 'input')) },
        responses: { 201: { ...info('the instance; Location: /v1/tasks/{id}'), headers: { Location: { schema: { type: 'string' } } } }, ...pick(errors, 400, 401, 404, 413, 415, 429, 503) }
      },
      get: {
        summary: "the caller's task instances, oldest first",
        responses: { 200: { description: 'the instances', content: content(jsonSchema(taskList, 'output')) }, ...pick(errors, 401) }
      }
    },
    '/v1/tasks/{id}': {
      parameters: [id],
      get: { summary: 'one task instance', responses: { 200: info('the instance'), ...pick(errors, 401, 404) } },
      delete: { summary: 'delete a task instance and its checkpoint', responses: { 204: { description: 'deleted' }, ...pick(errors, 401, 404, 503) } }
    },
    '/v1/tasks/{id}/loss': {
      parameters: [id],
      post: {
        summary: "loss, terms and gradients with the instance's config and parameters; one optimizer step when options.update",
        description: 'config or params in the body is 400 invalid_body (they belong to the instance); a failed checkpoint is 503 unavailable and the instance stays at its last checkpoint',
        requestBody: { required: true, content: content(jsonSchema(taskLossRequest, 'input')) },
        responses: { 200: { description: 'the evaluation and the step', content: content(jsonSchema(taskLoss, 'output')) }, ...errors }
      }
    },
    '/v1/tasks/{id}/state': {
      parameters: [id],
      get: {
        summary: "export the instance's parameters (and with ?optimizer=true its optimizer state) as safetensors",
        parameters: [{ name: 'optimizer', in: 'query', required: false, schema: optimizerParam }],
        responses: { 200: { description: 'the state file (Content-Disposition: attachment)', content: octet(stateFile) }, ...pick(errors, 400, 401, 404, 503) }
      },
      put: {
        summary: 'import parameters (and optimizer state, from optimizer.* tensors; without them the optimizer starts afresh)',
        description: 'F32, F16, BF16 and F64 tensors are accepted (converted to float32); a missing, unexpected or misshapen tensor is 400 with path ["state", "<key>"]',
        requestBody: { required: true, content: octet(stateFile) },
        responses: { 200: info('the instance, at the imported step'), ...pick(errors, 400, 401, 404, 413, 415, 503) }
      }
    }
  }
}

export function openApiDocument (): Record<string, unknown> {
  const components = new SchemaComponents()
  const jsonSchema = (schema: z.ZodType, io: 'input' | 'output'): Json => components.add(schema, io)
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
  Object.assign(paths, taskPaths(jsonSchema, content, errorResponses))
  paths['/v1/stream'] = {
    get: {
      summary: 'WebSocket: binary msgpack frames, answers tagged by id in completion order',
      // OpenAPI has no WebSocket messages: the frame and answer schemas are components
      description: `frames: ${ref(jsonSchema(streamFrame, 'input'))} (a kind, or a task instance id); answers: ${ref(jsonSchema(streamAnswer, 'output'))}`,
      responses: { 101: { description: 'switching protocols' } }
    }
  }
  paths['/health/live'] = { get: { summary: 'liveness', responses: { 200: { description: 'the process answers' } } } }
  paths['/health/ready'] = { get: { summary: 'readiness: every worker loaded its backend and warmed up', responses: { 200: { description: 'ready' }, 503: { description: 'not_ready' } } } }
  paths['/metrics'] = { get: { summary: 'Prometheus text format', responses: { 200: { description: 'metrics' } } } }
  return {
    openapi: '3.1.0',
    info: { title: 'ssl-loss-server', version: '1', description: "Lightning Bolts' self-supervised losses and their gradients" },
    paths,
    components: { schemas: components.schemas }
  }
}

/** where a schema lives in the document ('#/components/schemas/StreamFrame'), or the schema itself */
const ref = (schema: Json): string => typeof schema.$ref === 'string' ? schema.$ref : JSON.stringify(schema)

const METHODS = new Set(['get', 'put', 'post', 'delete', 'patch', 'head', 'options'])
const escape = (s: string): string => s.replace(/[&<>]/g, c => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;' })[c]!)

function page (doc: Record<string, unknown>): string {
  const rows = Object.entries(doc.paths as Record<string, Record<string, { summary: string, description?: string }>>)
    // path-level `parameters` is not an operation
    .flatMap(([path, ops]) => Object.entries(ops).filter(([method]) => METHODS.has(method)).map(([method, op]) => `<h2><code>${method.toUpperCase()} ${escape(path)}</code></h2><p>${escape(op.summary)}</p>${op.description ? `<p>${escape(op.description.slice(0, 400))}</p>` : ''}`))
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
