// GET /docs/openapi.json documents the task-instance routes (API.md "Task instances") from
// schemas/task.ts, and the document holds together: it parses, every $ref points at a schema
// that exists in it, and what the server really answers matches what it documents.
import t, { type Test } from 'tap'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { TASK_ID } from '../../schemas/task.ts'
import { testServer } from '../helpers/server.ts'

/** Every `$ref` in the document, with where it was found. */
function refsOf (v: unknown, at: string, out: Array<{ ref: string, at: string }> = []): Array<{ ref: string, at: string }> {
  if (Array.isArray(v)) v.forEach((x, i) => refsOf(x, `${at}/${i}`, out))
  else if (v !== null && typeof v === 'object') {
    for (const [k, x] of Object.entries(v)) {
      if (k === '$ref' && typeof x === 'string') out.push({ ref: x, at })
      else refsOf(x, `${at}/${k}`, out)
    }
  }
  return out
}

/** A JSON pointer ('#/components/schemas/TaskInfo') resolved in `doc`, or undefined. */
function resolve (doc: any, ref: string): any {
  if (!ref.startsWith('#/')) return undefined
  return ref.slice(2).split('/').reduce((node, key) => node?.[key.replace(/~1/g, '/').replace(/~0/g, '~')], doc)
}

function tmpDir (t: Test): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-docs-'))
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
  return dir
}

t.test('the OpenAPI document lists /v1/tasks* and every reference resolves', async t => {
  const { app } = await testServer(t, { dataDir: tmpDir(t) })
  const res = await app.inject({ url: '/docs/openapi.json' })
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^application\/json/)
  const doc = JSON.parse(res.body) // parses, or the test fails here
  t.equal(doc.openapi, '3.1.0')

  const ops = (p: string): string[] => Object.keys(doc.paths[p] ?? {}).filter(k => k !== 'parameters').sort()
  t.same(ops('/v1/tasks'), ['get', 'post'])
  t.same(ops('/v1/tasks/{id}'), ['delete', 'get'])
  t.same(ops('/v1/tasks/{id}/loss'), ['post'])
  t.same(ops('/v1/tasks/{id}/state'), ['get', 'put'])
  for (const p of ['/v1/tasks/{id}', '/v1/tasks/{id}/loss', '/v1/tasks/{id}/state']) {
    const id = doc.paths[p].parameters?.find((x: any) => x.name === 'id')
    t.same({ in: id?.in, required: id?.required, pattern: id?.schema?.pattern }, { in: 'path', required: true, pattern: TASK_ID.source }, `${p}: the id parameter`)
  }

  // the references zod makes (#/$defs/...) would not resolve in an OpenAPI document
  const refs = refsOf(doc, '#')
  t.ok(refs.length > 10, `${refs.length} references`)
  const broken = refs.filter(r => resolve(doc, r.ref) === undefined)
  t.same(broken, [], 'every $ref resolves inside the document')
  t.notOk(JSON.stringify(doc).includes('#/$defs/'), 'no schema-local references left')

  const create = doc.paths['/v1/tasks'].post
  const createBody = resolve(doc, create.requestBody.content['application/json'].schema.$ref)
  t.same(createBody.properties.kind.enum.sort(), ['amdim-nce', 'cpc', 'feature-map-contrastive', 'nt-xent'])
  t.same(Object.keys(createBody.properties).sort(), ['config', 'kind', 'optimizer', 'seed'])
  t.same(createBody.required, ['kind'])
  t.ok(create.responses['201'] && create.responses['429'] && create.responses['413'], 'created, and the limits')

  const loss = doc.paths['/v1/tasks/{id}/loss'].post
  const lossBody = resolve(doc, loss.requestBody.content['application/msgpack'].schema.$ref)
  t.same(Object.keys(lossBody.properties).sort(), ['inputs', 'options'], 'no config or params: they belong to the instance')
  const lossAnswer = resolve(doc, loss.responses['200'].content['application/json'].schema.$ref)
  t.ok(lossAnswer.required.includes('step') && lossAnswer.required.includes('loss'), 'the answer carries loss and step')
  t.match(loss.responses['503'].description, /unavailable/, 'a failed checkpoint is documented')

  const state = doc.paths['/v1/tasks/{id}/state']
  t.same(Object.keys(state.get.responses['200'].content), ['application/octet-stream'])
  t.same(Object.keys(state.put.requestBody.content), ['application/octet-stream'])
  t.same(state.get.parameters.map((p: any) => [p.name, p.in, p.schema.enum.sort()]), [['optimizer', 'query', ['0', '1', 'false', 'true']]])
  t.ok(state.put.responses['415'], 'PUT documents the wrong media type')

  // what the server answers has exactly the documented fields
  const info = await app.inject({ method: 'POST', url: '/v1/tasks', payload: { kind: 'cpc', config: { num_input_channels: 4, target_dim: 8, hidden_channels: 8, num_blocks: 1 }, seed: 1 } })
  t.equal(info.statusCode, 201)
  const infoSchema = resolve(doc, create.responses['201'].content['application/json'].schema.$ref)
  t.same(Object.keys(info.json()).sort(), Object.keys(infoSchema.properties).sort(), 'TaskInfo fields')
  for (const k of infoSchema.required) t.ok(k in info.json(), `required ${k} is answered`)
  const list = resolve(doc, doc.paths['/v1/tasks'].get.responses['200'].content['application/json'].schema.$ref)
  t.same(Object.keys(list.properties), ['tasks'])
  t.same(Object.keys((await app.inject({ url: '/v1/tasks' })).json()), ['tasks'])

  // the stream's frame and answer are components too
  t.match(doc.paths['/v1/stream'].get.description, /#\/components\/schemas\/StreamFrame/)
  t.ok(doc.components.schemas.StreamFrame.properties.task, 'frames may name a task instance')
})

t.test('the /docs page lists the task routes', async t => {
  const { app } = await testServer(t, { dataDir: tmpDir(t) })
  const page = (await app.inject({ url: '/docs' })).body
  for (const op of ['POST /v1/tasks', 'GET /v1/tasks', 'GET /v1/tasks/{id}', 'DELETE /v1/tasks/{id}', 'POST /v1/tasks/{id}/loss', 'GET /v1/tasks/{id}/state', 'PUT /v1/tasks/{id}/state']) {
    t.ok(page.includes(`<code>${op}</code>`), op)
  }
  t.notOk(page.includes('PARAMETERS'), 'path-level parameters are not shown as an operation')
})
