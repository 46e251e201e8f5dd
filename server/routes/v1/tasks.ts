// Task instances (API.md "Task instances"): POST/GET /v1/tasks, GET/DELETE /v1/tasks/{id},
// POST /v1/tasks/{id}/loss, GET/PUT /v1/tasks/{id}/state (safetensors,
// application/octet-stream). Every route answers 404 unknown_task for an id that is not
// the caller's (server/plugins/auth.ts sets request.owner).
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { zodToError } from '../../../src/compute/evaluate.ts'
import { LossServerError } from '../../../src/errors.ts'
import { decodeImport, encodeStateFile } from '../../../src/store/state-file.ts'
import type { Readable } from 'node:stream'
import { MEDIA_TYPE } from '../../../src/wire/content-type.ts'
import { createTaskEnvelope, stateQuery, taskLossEnvelope } from '../../../schemas/task.ts'
import { answerForm, msgpackPayload } from '../../plugins/wire-body.ts'

const OCTET = 'application/octet-stream'

function answer (request: FastifyRequest, reply: FastifyReply, body: unknown): Buffer | Readable | string {
  const form = answerForm(request)
  reply.type(MEDIA_TYPE[form])
  return form === 'msgpack' ? msgpackPayload(reply, body) : JSON.stringify(body)
}

/** The client went away: lets a call that still waits for its worker be dropped. */
function goneSignal (reply: FastifyReply): { signal: AbortSignal, done: () => void } {
  const gone = new AbortController()
  const onClose = (): void => { if (!reply.raw.writableFinished) gone.abort() }
  reply.raw.once('close', onClose)
  return { signal: gone.signal, done: () => reply.raw.off('close', onClose) }
}

export default async function taskRoutes (app: FastifyInstance, opts: { bodyLimit: number }): Promise<void> {
  const { registry } = app.tasks
  // safetensors bodies, for PUT .../state only (this plugin's scope)
  app.addContentTypeParser(OCTET, { parseAs: 'buffer', bodyLimit: opts.bodyLimit }, (request, body, done) => {
    if (request.method === 'PUT') done(null, body)
    else done(new LossServerError('unsupported_media_type', `${OCTET} is only for PUT /v1/tasks/{id}/state; send application/msgpack or application/json`), undefined)
  })

  app.post('/tasks', async (request, reply) => {
    const body = createTaskEnvelope.safeParse(request.body)
    if (!body.success) throw zodToError(body.error, [], 'invalid_body')
    const info = await registry.create(body.data, request.owner)
    reply.code(201).header('location', `/v1/tasks/${info.id}`)
    return answer(request, reply, info)
  })

  app.get('/tasks', async (request, reply) => answer(request, reply, { tasks: registry.list(request.owner) }))

  app.get<{ Params: { id: string } }>('/tasks/:id', async (request, reply) => answer(request, reply, registry.info(request.params.id, request.owner)))

  app.delete<{ Params: { id: string } }>('/tasks/:id', async (request, reply) => {
    await registry.delete(request.params.id, request.owner)
    reply.code(204)
    return ''
  })

  app.post<{ Params: { id: string } }>('/tasks/:id/loss', async (request, reply) => {
    const { id } = request.params
    registry.info(id, request.owner) // 404 before the body is looked at
    const raw = request.body as Record<string, unknown> | null
    for (const key of ['config', 'params']) {
      if (raw !== null && typeof raw === 'object' && Object.hasOwn(raw, key)) {
        throw new LossServerError('invalid_body', `'${key}' belongs to task instance ${id} (fixed at creation${key === 'params' ? '; replace them with PUT /v1/tasks/{id}/state' : ''}); send only inputs and options`, [key])
      }
    }
    const body = taskLossEnvelope.safeParse(raw)
    if (!body.success) throw zodToError(body.error, [], 'invalid_body')
    const gone = goneSignal(reply)
    try {
      const form = answerForm(request)
      const result = await app.tasks.evaluate(id, request.owner, body.data, {
        form,
        signal: gone.signal,
        ...(request.ownedBody ? { owned: request.ownedBody } : {})
      })
      return answer(request, reply, result)
    } finally {
      gone.done()
    }
  })

  app.get<{ Params: { id: string }, Querystring: Record<string, string> }>('/tasks/:id/state', async (request, reply) => {
    const q = stateQuery.safeParse(request.query ?? {})
    if (!q.success) throw zodToError(q.error, ['query'], 'invalid_body')
    const withOptimizer = q.data.optimizer === 'true' || q.data.optimizer === '1'
    const { meta, state } = await registry.exportState(request.params.id, request.owner, withOptimizer)
    reply.type(OCTET).header('content-disposition', `attachment; filename="${meta.id}.safetensors"`)
    return encodeStateFile(meta, state, { optimizer: withOptimizer, checkpoint: false })
  })

  app.put<{ Params: { id: string } }>('/tasks/:id/state', async (request, reply) => {
    const meta = registry.meta(request.params.id, request.owner)
    const type = String(request.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase()
    if (type !== OCTET || !Buffer.isBuffer(request.body)) {
      throw new LossServerError('unsupported_media_type', `task state is a safetensors file sent as ${OCTET}, got '${type || '(none)'}'`)
    }
    const state = decodeImport(request.body, meta)
    return answer(request, reply, await registry.importState(meta.id, request.owner, state))
  })
}
