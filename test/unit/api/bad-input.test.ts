import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { IncomingMessage } from 'node:http';
import { pino } from 'pino';
import { RequestContext } from '../../../src/api/context.js';
import { ApiServer, MAX_HEADER_BYTES } from '../../../src/api/server.js';
import { Router } from '../../../src/api/router.js';
import { versionParam } from '../../../src/api/query.js';
import { ApiError } from '../../../src/util/errors.js';

const ctx = (query: string) =>
  new RequestContext({} as IncomingMessage, undefined, {}, new URLSearchParams(query), '1.41');

/** The status and message of what `fn` throws. */
function thrown(fn: () => unknown): [number, string] {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof ApiError, `not an ApiError: ${String(e)}`);
    return [e.status, e.message];
  }
  assert.fail('nothing thrown');
}

test('filters: both of Docker\'s shapes, null as no filter, anything else 400 "invalid filter"', () => {
  assert.deepEqual(
    [...ctx('filters={"label":{"a=b":true},"name":{"x":false}}').filters()],
    [
      ['label', ['a=b']],
      ['name', ['x']],
    ],
  );
  assert.deepEqual([...ctx('filters={"label":["a","a","b"]}').filters()], [['label', ['a', 'b']]]);
  assert.deepEqual([...ctx('filters=null').filters()], []);
  assert.deepEqual([...ctx('filters={"label":null}').filters()], [['label', []]]);
  for (const bad of [
    'garbage',
    '{',
    '[]',
    '"s"',
    '42',
    'true',
    '{"a":1}',
    '{"a":"x"}',
    '{"a":[1]}',
    '{"a":{"x":"yes"}}',
    '{"a":["x"],"b":{"y":true}}',
  ]) {
    assert.deepEqual(
      thrown(() => ctx(`filters=${encodeURIComponent(bad)}`).filters()),
      [400, 'invalid filter'],
      bad,
    );
  }
});

test("bool: dockerd's BoolValue (only 0/false/no/none are false, any case); never an error", () => {
  for (const v of ['1', 'true', 'TRUE', 'yes', 'maybe', '2', '-1']) assert.equal(ctx(`all=${v}`).bool('all'), true, v);
  for (const v of ['0', 'false', 'False', 'NO', 'none', ' false '])
    assert.equal(ctx(`all=${encodeURIComponent(v)}`).bool('all'), false, v);
  assert.equal(ctx('').bool('stream', true), true);
  assert.equal(ctx('stream=').bool('stream', true), true);
});

test('int: integers only, else 400 naming the parameter', () => {
  assert.equal(ctx('limit=5').int('limit', 0), 5);
  assert.equal(ctx('limit=-1').int('limit', 0), -1);
  assert.equal(ctx('').int('limit', 7), 7);
  for (const bad of ['abc', '1.5', '1e3', '0x10', ' 1', 'NaN', '99999999999999999999']) {
    const [status, message] = thrown(() => ctx(`limit=${encodeURIComponent(bad)}`).int('limit', 0));
    assert.equal(status, 400, bad);
    assert.match(message, /^invalid value for limit: strconv\.Atoi/);
  }
});

test('?version=: strconv.ParseUint rules and messages', () => {
  const msg = (raw: string, why: string) => `invalid node version '${raw}': ${why}`;
  assert.equal(versionParam(new URLSearchParams('version=12'), msg), 12);
  assert.deepEqual(
    thrown(() => versionParam(new URLSearchParams('version=-1'), msg)),
    [400, `invalid node version '-1': strconv.ParseUint: parsing "-1": invalid syntax`],
  );
  assert.deepEqual(
    thrown(() => versionParam(new URLSearchParams(''), msg)),
    [400, `invalid node version '': strconv.ParseUint: parsing "": invalid syntax`],
  );
  assert.deepEqual(
    thrown(() => versionParam(new URLSearchParams('version=99999999999999999999'), msg)),
    [
      400,
      `invalid node version '99999999999999999999': strconv.ParseUint: parsing "99999999999999999999": value out of range`,
    ],
  );
  // Within 64 bits but past any real index: a number, which then fails "out of sequence" as on dockerd.
  assert.equal(versionParam(new URLSearchParams('version=18446744073709551615'), msg), 2 ** 64);
});

/** Raw bytes in, status and body out: the requests node's own client refuses to send. */
function raw(socket: string, bytes: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const s = net.connect(socket, () => s.write(bytes));
    const chunks: Buffer[] = [];
    s.on('data', (c) => chunks.push(c));
    s.on('error', reject);
    s.on('close', () => {
      const text = Buffer.concat(chunks).toString('latin1');
      const m = /^HTTP\/1\.1 (\d{3})/.exec(text);
      if (!m) return reject(new Error(`no answer: ${JSON.stringify(text.slice(0, 200))}`));
      const head = text.slice(0, text.indexOf('\r\n\r\n'));
      let body = text.slice(head.length + 4);
      // One chunk at most here: "<size>\r\n<data>\r\n0\r\n\r\n".
      if (/transfer-encoding: chunked/i.test(head))
        body = body.slice(body.indexOf('\r\n') + 2, body.lastIndexOf('\r\n0\r\n'));
      resolve({ status: Number(m[1]), body });
    });
  });
}

test('HTTP-level bad input gets dockerd\'s status and a JSON {"message"}', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-api-'));
  const socket = path.join(dir, 'api.sock');
  const router = new Router()
    .get('/info', () => ({ body: { ok: true } }))
    .get('/things/:id', (c) => ({ body: { id: c.params.id } }));
  const server = new ApiServer(router, pino({ level: 'silent' }));
  await server.listen(`unix://${socket}`);
  t.after(async () => {
    await server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const req = (line: string, headers = '') => raw(socket, `${line}\r\nHost: d\r\nConnection: close\r\n${headers}\r\n`);
  const cases: [string, Promise<{ status: number; body: string }>, number, RegExp][] = [
    ['unknown method', req('FOO /info HTTP/1.1'), 404, /^page not found$/],
    ['method the path lacks', req('DELETE /info HTTP/1.1'), 404, /^page not found$/],
    ['CONNECT', req('CONNECT docker:2375 HTTP/1.1'), 404, /^page not found$/],
    ['unknown path', req('GET /nope HTTP/1.1'), 404, /^page not found$/],
    ['16 KiB URL (under the limit)', req(`GET /things/${'a'.repeat(16 * 1024)} HTTP/1.1`), 200, /./],
    ['URL over the limit', req(`GET /info?x=${'a'.repeat(MAX_HEADER_BYTES)} HTTP/1.1`), 431, /larger than 65536 bytes/],
    [
      'header over the limit',
      req('GET /info HTTP/1.1', `X-Big: ${'h'.repeat(MAX_HEADER_BYTES)}\r\n`),
      431,
      /larger than/,
    ],
    ['bad escape in the path', req('GET /things/%zz HTTP/1.1'), 400, /invalid URL escape/],
    ['asterisk target', req('GET * HTTP/1.1'), 400, /unsupported request target/],
    ['bad Content-Length', req('POST /info HTTP/1.1', 'Content-Length: abc\r\n'), 400, /^bad request/],
    ['API version too new', req('GET /v9.99/info HTTP/1.1'), 400, /too new/],
  ];
  for (const [what, answer, status, message] of cases) {
    const a = await answer;
    assert.equal(a.status, status, `${what}: ${a.body}`);
    const body = JSON.parse(a.body) as { message?: string };
    if (status !== 200) assert.match(body.message ?? '', message, what);
  }
});
