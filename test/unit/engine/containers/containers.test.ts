import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { readLog } from '../../../../src/engine/containers/logs.js';
import { matchesFilters, validateFilters } from '../../../../src/engine/containers/filters.js';
import { parseSignal } from '../../../../src/engine/containers/manager.js';
import { humanDuration, statusText } from '../../../../src/engine/containers/views.js';
import { validName } from '../../../../src/engine/containers/names.js';
import { ZERO_TIME, type ContainerRecord } from '../../../../src/engine/containers/record.js';
import { ApiError } from '../../../../src/util/errors.js';

test('k8s-file log lines: streams, partial lines, nanosecond timestamps, only whole lines consumed', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-log-'));
  const f = path.join(dir, 'log');
  const whole =
    '2026-11-26T06:54:29.863992780+00:00 stdout F hello\n2026-11-26T06:54:29.9+00:00 stderr P par\n2026-11-26T06:54:30.000000001+00:00 stderr F tial\n';
  fs.writeFileSync(f, whole + '2026-11-26T06:54:31.0+00:00 stdout F incompl');
  const r = readLog(f, 0);
  assert.equal(r.offset, Buffer.byteLength(whole));
  assert.deepEqual(
    r.entries.map((e) => [e.stream, e.data.toString(), e.time]),
    [
      [1, 'hello\n', '2026-11-26T06:54:29.863992780Z'],
      [2, 'par', '2026-11-26T06:54:29.9Z'],
      [2, 'tial\n', '2026-11-26T06:54:30.000000001Z'],
    ],
  );
  assert.equal(r.entries[0].ms, Date.parse('2026-11-26T06:54:29.863Z'));
  assert.deepEqual(readLog(f, r.offset).entries, []);
  fs.rmSync(dir, { recursive: true });
});

test("signals: names with or without SIG, numbers; anything else is Docker's 400", () => {
  assert.equal(parseSignal('SIGTERM'), 15);
  assert.equal(parseSignal('kill'), 9);
  assert.equal(parseSignal('10'), 10);
  assert.throws(
    () => parseSignal('SIGNOPE'),
    (e: unknown) => e instanceof ApiError && e.status === 400 && e.message === 'Invalid signal: SIGNOPE',
  );
  assert.throws(() => parseSignal('0'), ApiError);
});

test("container names: Docker's rule, stored with a leading slash", () => {
  assert.equal(validName('web-1.a_b'), '/web-1.a_b');
  assert.equal(validName('/ab'), '/ab');
  assert.throws(() => validName('a'), /Invalid container name \(a\)/);
  assert.throws(() => validName('-x'), ApiError);
  assert.throws(() => validName('a b'), ApiError);
});

function rec(over: Partial<ContainerRecord> = {}): ContainerRecord {
  return {
    id: 'ab'.repeat(32),
    name: '/web',
    created: new Date().toISOString(),
    image: 'img',
    imageId: 'sha256:' + 'c'.repeat(64),
    path: 'sh',
    args: [],
    config: { Labels: { 'com.docker.swarm.service.id': 's1', tier: 'front' } },
    hostConfig: { NetworkMode: 'default' },
    state: {
      Status: 'running',
      Pid: 1,
      ExitCode: 0,
      Error: '',
      StartedAt: new Date().toISOString(),
      FinishedAt: ZERO_TIME,
      OOMKilled: false,
    },
    restartCount: 0,
    ...over,
  };
}

test('ps filters: label (all must match), name (regexp), id prefix, status, exited; unknown keys are 400', () => {
  const r = rec();
  const m = (f: Record<string, string[]>) => matchesFilters(r, new Map(Object.entries(f)), () => false);
  assert.ok(m({ label: ['com.docker.swarm.service.id=s1', 'tier'] }));
  assert.ok(!m({ label: ['com.docker.swarm.service.id=s1', 'tier=back'] }));
  assert.ok(m({ name: ['^we'] }));
  assert.ok(!m({ name: ['^/?x'] }));
  assert.ok(m({ id: ['abab'] }));
  assert.ok(m({ status: ['exited', 'running'] }));
  assert.ok(!m({ exited: ['0'] }));
  assert.ok(
    matchesFilters(
      rec({ state: { ...r.state, Status: 'exited', ExitCode: 3 } }),
      new Map([['exited', ['3']]]),
      () => false,
    ),
  );
  assert.throws(() => validateFilters(new Map([['bogus', ['1']]])), /invalid filter 'bogus'/);
  assert.throws(() => validateFilters(new Map([['status', ['sleeping']]])), ApiError);
});

test('status text and human durations as the docker CLI shows them', () => {
  assert.equal(humanDuration(500), 'Less than a second');
  assert.equal(humanDuration(45_000), '45 seconds');
  assert.equal(humanDuration(60_000), 'About a minute');
  assert.equal(humanDuration(3 * 3600_000), '3 hours');
  const now = Date.now();
  assert.equal(
    statusText(rec({ state: { ...rec().state, StartedAt: new Date(now - 5000).toISOString() } }), now),
    'Up 5 seconds',
  );
  assert.equal(
    statusText(
      rec({
        state: { ...rec().state, Status: 'exited', ExitCode: 2, FinishedAt: new Date(now - 120_000).toISOString() },
      }),
      now,
    ),
    'Exited (2) 2 minutes ago',
  );
  assert.equal(statusText(rec({ state: { ...rec().state, Status: 'created' } }), now), 'Created');
});

test('TTY relay newlines: one translation whatever the ptys did, CRs across chunks kept', async () => {
  const { CrlfNormalizer } = await import('../../../../src/engine/containers/exec.js');
  const n = new CrlfNormalizer();
  const run = (...chunks: string[]) =>
    chunks.map((c) => n.push(Buffer.from(c)).toString()).join('') + n.flush().toString();
  assert.equal(run('a\nb\r\nc\r\r\n'), 'a\r\nb\r\nc\r\n');
  assert.equal(run('x\r', '\ny\r', 'z'), 'x\r\ny\rz');
  assert.equal(run('progress 1\rprogress 2\r'), 'progress 1\rprogress 2\r');
});
