// POST /v1/loss/{kind}: one stateless evaluation (API.md "Routes").
import type { FastifyInstance } from 'fastify'
import { zodToError } from '../../../src/compute/evaluate.ts'
import { getKind } from '../../../src/tasks/registry.ts'
import { MEDIA_TYPE } from '../../../src/wire/content-type.ts'
import { evaluationEnvelope } from '../../../schemas/request.ts'
import { unknownKind } from '../../plugins/evaluator.ts'
import { answerForm, msgpackPayload } from '../../plugins/wire-body.ts'

export default async function lossRoutes (app: FastifyInstance): Promise<void> {
  app.post<{ Params: { kind: string } }>('/loss/:kind', async (request, reply) => {
    const { kind } = request.params
    if (!getKind(kind)) throw unknownKind(kind)
    const body = evaluationEnvelope.safeParse(request.body)
    if (!body.success) throw zodToError(body.error, [], 'invalid_body')
    // The client went away before its answer: drop the request if it still waits in the queue.
    const gone = new AbortController()
    const onClose = (): void => { if (!reply.raw.writableFinished) gone.abort() }
    reply.raw.once('close', onClose)
    const form = answerForm(request)
    try {
      const answer = await app.evaluator.evaluate(kind, body.data, {
        form,
        signal: gone.signal,
        ...(request.ownedBody ? { owned: request.ownedBody } : {})
      })
      reply.type(MEDIA_TYPE[form])
      if (form === 'json') return JSON.stringify(answer)
      return msgpackPayload(reply, answer)
    } finally {
      reply.raw.off('close', onClose)
    }
  })
}
