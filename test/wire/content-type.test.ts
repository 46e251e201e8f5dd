// Content-Type and Accept negotiation (API.md "Content types").
import t from 'tap'
import { MEDIA_TYPE, requestForm, responseForm } from '../../src/wire/content-type.ts'

t.test('request Content-Type', async t => {
  const cases: Array<[string | undefined, string | undefined]> = [
    ['application/msgpack', 'msgpack'],
    ['application/x-msgpack', 'msgpack'],
    ['Application/MsgPack', 'msgpack'],
    ['application/msgpack; foo=bar', 'msgpack'],
    ['application/json', 'json'],
    ['application/json; charset=utf-8', 'json'],
    ['application/json;charset="UTF-8"', 'json'],
    ['  application/json ; charset=utf8 ', 'json'],
    ['application/json; charset=iso-8859-1', undefined],
    ['text/plain', undefined],
    ['application/octet-stream', undefined],
    ['application/*', undefined],
    ['*/*', undefined],
    ['application/jsonx', undefined],
    ['application/problem+json', undefined],
    ['json', undefined],
    ['', undefined],
    [undefined, undefined]
  ]
  for (const [header, want] of cases) t.equal(requestForm(header), want, `${JSON.stringify(header)} -> ${want}`)
})

t.test('Accept picks the response form; otherwise the request form', async t => {
  const cases: Array<[string | string[] | undefined, 'msgpack' | 'json', 'msgpack' | 'json']> = [
    [undefined, 'msgpack', 'msgpack'],
    [undefined, 'json', 'json'],
    ['', 'json', 'json'],
    ['application/json', 'msgpack', 'json'],
    ['application/msgpack', 'json', 'msgpack'],
    ['application/x-msgpack', 'json', 'msgpack'],
    ['*/*', 'msgpack', 'msgpack'],
    ['*/*', 'json', 'json'],
    ['application/*', 'json', 'json'],
    ['text/html', 'msgpack', 'msgpack'],
    ['text/html, application/json;q=0.9', 'msgpack', 'json'],
    ['application/json;q=0.5, application/msgpack;q=0.8', 'json', 'msgpack'],
    ['application/json, application/msgpack', 'json', 'json'],
    ['application/json, application/msgpack', 'msgpack', 'msgpack'],
    ['application/json, */*;q=0.1', 'msgpack', 'json'],
    ['*/*;q=0.1, application/json', 'msgpack', 'json'],
    ['application/msgpack;q=0, */*', 'msgpack', 'json'],
    ['application/json;q=0', 'json', 'json'],
    ['application/json; charset=utf-8; q=0.3, application/x-msgpack; q=0.2', 'msgpack', 'json'],
    ['application/json;q=abc, application/msgpack', 'json', 'msgpack'],
    [['application/json;q=0.1', 'application/msgpack'], 'json', 'msgpack'],
    ['garbage;;;,,', 'msgpack', 'msgpack']
  ]
  for (const [accept, fallback, want] of cases) t.equal(responseForm(accept, fallback), want, `Accept ${JSON.stringify(accept)}, request ${fallback} -> ${want}`)
})

t.test('media types for responses', async t => {
  t.equal(MEDIA_TYPE.msgpack, 'application/msgpack')
  t.equal(requestForm(MEDIA_TYPE.json), 'json', 'what we send, we accept')
  t.equal(requestForm(MEDIA_TYPE.msgpack), 'msgpack')
})
