import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execForm, expand, parseDockerfile } from '../../../../src/engine/build/dockerfile.js';
import { ApiError } from '../../../../src/util/errors.js';

test('a Dockerfile: comments and blank lines dropped, continuations joined as dockerd joins them', () => {
  const steps = parseDockerfile('# top\nFROM alpine\n\nRUN echo a && \\\n    # inside\n    echo b\ncmd ["x"]\r\n');
  assert.deepEqual(
    steps.map((s) => [s.name, s.args, s.line]),
    [
      ['FROM', 'alpine', 2],
      ['RUN', 'echo a &&     echo b', 4],
      ['CMD', '["x"]', 7],
    ],
  );
  assert.equal(steps[1].original, 'RUN echo a &&     echo b');
});

test("an unknown instruction is dockerd's 400 with its line", () => {
  assert.throws(
    () => parseDockerfile('FROM a\n\nFOO bar\n'),
    (e) =>
      e instanceof ApiError &&
      e.status === 400 &&
      e.message === 'dockerfile parse error line 3: unknown instruction: FOO',
  );
});

test('exec form only for a JSON array of strings; $VAR and ${VAR:-d} expansion', () => {
  assert.deepEqual(execForm('["a", "b"]'), ['a', 'b']);
  assert.equal(execForm('[a, b]'), undefined);
  assert.equal(execForm('echo [x]'), undefined);
  const env = ['A=1', 'EMPTY='];
  assert.equal(expand('$A/${A}/${B:-dflt}/${A:+set}/${EMPTY:-e}/\\$A', env), '1/1/dflt/set/e/$A');
});
