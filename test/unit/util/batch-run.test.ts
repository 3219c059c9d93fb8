import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { batchResult, batchScript, CommandBatcher, shQuote } from '../../../src/util/batch-run.js';
import { CommandError, run } from '../../../src/util/run.js';
import { ipBatchesScript } from '../../../src/engine/network/ip.js';

test('shQuote keeps every character literal', async () => {
  const word = `a b'c"$HOME\\n;*`;
  const r = await run('/bin/sh', ['-c', `printf %s ${shQuote(word)}`]);
  assert.equal(r.stdout, word);
});

test('batchScript: one background job per item, here-documents for input, results per item', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'batch-test-'));
  try {
    const script = batchScript(
      [
        { cmd: 'echo', args: ['one', "it's"] },
        { cmd: 'cat', args: [], input: 'line $HOME `x`\nsecond' },
        { cmd: 'sh', args: ['-c', 'echo oops >&2; exit 3'] },
      ],
      dir,
      'END',
    );
    assert.match(script, /<<'END'\nline \$HOME `x`\nsecond\nEND\n/);
    assert.equal(script.match(/&$/gm)?.length, 3);
    await run('/bin/sh', ['-c', script]);
    assert.deepEqual(batchResult(dir, 0), { code: 0, stdout: "one it's\n", stderr: '' });
    assert.deepEqual(batchResult(dir, 1), { code: 0, stdout: 'line $HOME `x`\nsecond\n', stderr: '' });
    assert.deepEqual(batchResult(dir, 2), { code: 3, stdout: '', stderr: 'oops\n' });
    assert.equal(batchResult(dir, 3).code, null);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('batchScript refuses input that contains its delimiter', () => {
  assert.throws(() => batchScript([{ cmd: 'cat', args: [], input: 'a\nEND\nb' }], '/x', 'END'), /delimiter/);
});

test('CommandBatcher: run’s contract per call, calls of one turn share a batch', async () => {
  const b = new CommandBatcher(1);
  const calls = Array.from({ length: 20 }, (_, i) => b.run('sh', ['-c', `echo $$ ${i}`]));
  const failing = b.run('sh', ['-c', 'echo bad >&2; exit 2']);
  const allowed = b.run('sh', ['-c', 'exit 4'], { allowFail: true });
  const outs = await Promise.all(calls);
  assert.deepEqual(
    outs.map((o) => o.stdout.trim().split(' ')[1]),
    outs.map((_, i) => String(i)),
  );
  await assert.rejects(failing, (e) => e instanceof CommandError && e.code === 2 && /bad/.test(e.stderr));
  assert.equal((await allowed).code, 4);
  // Everything queued in one turn ran under one sh.
  const before = b.batches;
  await Promise.all(Array.from({ length: 5 }, () => b.run('true', [])));
  assert.equal(b.batches - before, 1);
});

test('ipBatchesScript: one here-document per netns, in order, stopping at the first failure', async () => {
  const script = ipBatchesScript([
    { target: { kind: 'self' }, commands: ['link add v1 type veth peer name eth0 netns 42', 'link set v1 up'] },
    { target: { kind: 'pid', pid: 42 }, commands: ['link set lo up'] },
    { target: { kind: 'named', name: 'ns1' }, commands: [] },
  ]);
  assert.equal(
    script,
    [
      'set -e',
      "'ip' '-batch' '-' <<'IP_EOF_0'",
      'link add v1 type veth peer name eth0 netns 42',
      'link set v1 up',
      'IP_EOF_0',
      "'nsenter' '-t' '42' '-n' '--' 'ip' '-batch' '-' <<'IP_EOF_1'",
      'link set lo up',
      'IP_EOF_1',
      '',
    ].join('\n'),
  );
  // Same shape with stand-ins for ip: the second run never happens after the first fails.
  const r = await run(
    '/bin/sh',
    ['-c', script.replace(/'ip' '-batch' '-'/, 'cat >/dev/null; false').replace(/'nsenter'[^<]*/, 'echo second ')],
    { allowFail: true },
  );
  assert.notEqual(r.code, 0);
  assert.equal(r.stdout, '');
});
