import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Task } from '../../../../src/cluster/types.js';
import { taskContainerConfig } from '../../../../src/agent/executor/executor.js';
import { expandContainerSpec, expandTemplate, templateContext } from '../../../../src/agent/executor/task-template.js';
import { newTask } from '../../../../src/manager/orchestrator/task.js';
import { status } from '../../../../src/cluster/task-state.js';
import { makeService } from '../../../helpers/swarm-fixtures.js';

const node = { Hostname: 'worker-7', Platform: { Architecture: 'x86_64', OS: 'linux' } };

function task(over: Partial<Task> = {}): Task {
  const t = newTask(makeService('web', { Labels: { tier: 'front', 'com.example.zone': 'eu' } }), 2);
  return { ...t, NodeID: 'node1', Status: status('assigned', 'scheduler assigned task to node'), ...over };
}

test('template: fields, index, join and plain text expand as swarmkit does', () => {
  const t = task();
  const ctx = templateContext(t, `web.2.${t.ID}`, 'node1', node);
  const x = (s: string) => expandTemplate(s, ctx);
  assert.equal(x('{{.Node.Hostname}}-{{.Service.Name}}'), 'worker-7-web');
  assert.equal(x('{{.Service.ID}}/{{.Node.ID}}/{{.Task.ID}}'), `${t.ServiceID}/node1/${t.ID}`);
  assert.equal(x('{{.Task.Name}} slot {{ .Task.Slot }}'), `web.2.${t.ID} slot 2`);
  assert.equal(x('{{.Node.Platform.OS}}/{{.Node.Platform.Architecture}}'), 'linux/x86_64');
  assert.equal(x('{{index .Service.Labels "com.example.zone"}}'), 'eu');
  assert.equal(x('{{index .Service.Labels "missing"}}'), '');
  assert.equal(x('{{index .Service.Labels "constructor"}}'), '', 'only the labels themselves are keys');
  assert.equal(x('{{.Service.Labels.tier}}'), 'front');
  assert.equal(x('{{.Service.Labels}}'), 'map[com.example.zone:eu tier:front]');
  assert.equal(x('{{.Node.Platform}}'), '{x86_64 linux}');
  assert.equal(x('{{join "-" .Service.Name .Task.Slot}}'), 'web-2');
  assert.equal(x('a {{- " b " -}} c'), 'a b c');
  assert.equal(x('no placeholders'), 'no placeholders');
  // A global task has no slot: Task.Slot is its node's ID.
  const g = task({ Slot: undefined });
  assert.equal(expandTemplate('{{.Task.Slot}}', templateContext(g, `web.node1.${g.ID}`, 'node1', node)), 'node1');
  // Without the node's description its fields stay empty.
  assert.equal(expandTemplate('[{{.Node.Hostname}}]', templateContext(t, 'n', 'node1')), '[]');
});

test("template: a bad template gives Go text/template's error", () => {
  const ctx = templateContext(task(), 'web.2.x', 'node1', node);
  assert.throws(() => expandTemplate('{{.Node.Hostname', ctx), { message: 'template: expansion:1: unclosed action' });
  assert.throws(() => expandTemplate('{{}}', ctx), { message: 'template: expansion:1: missing value for command' });
  assert.throws(() => expandTemplate('{{secret "x"}}', ctx), {
    message: 'template: expansion:1: function "secret" not defined',
  });
  assert.throws(() => expandTemplate('x{{.Foo}}', ctx), {
    message:
      'template: expansion:1:3: executing "expansion" at <.Foo>: can\'t evaluate field Foo in type *template.Context',
  });
  assert.throws(() => expandTemplate('{{.Node.Name}}', ctx), {
    message:
      'template: expansion:1:2: executing "expansion" at <.Node.Name>: can\'t evaluate field Name in type struct { ID string; Hostname string; Platform template.Platform }',
  });
  assert.throws(() => expandTemplate('{{.Service.Labels.nope}}', ctx), {
    message:
      'template: expansion:1:2: executing "expansion" at <.Service.Labels.nope>: map has no entry for key "nope"',
  });
  assert.throws(() => expandTemplate('{{.Service.Labels.toString}}', ctx), {
    message: /map has no entry for key "toString"$/,
  });
  assert.throws(() => expandTemplate('{{.Service.Name.X}}', ctx), {
    message: /can't evaluate field X in type string$/,
  });
});

test('taskContainerConfig expands hostname, env values and mount fields per task', () => {
  const t = task();
  t.Spec.ContainerSpec = {
    Image: 'busybox',
    Hostname: '{{.Node.Hostname}}-{{.Service.Name}}',
    Env: ['TASK={{.Task.Name}}', 'PLAIN', 'KEEP={{"{{"}}x'],
    Mounts: [
      {
        Type: 'volume',
        Source: 'data-{{.Task.Slot}}',
        Target: '/data/{{.Service.Name}}',
        VolumeOptions: {
          Labels: { owner: '{{.Node.ID}}' },
          DriverConfig: { Name: 'local', Options: { o: '{{index .Service.Labels "tier"}}' } },
        },
      },
    ],
  };
  const { config, hostConfig } = taskContainerConfig(t, 'node1', node);
  assert.equal(config.Hostname, 'worker-7-web');
  assert.deepEqual(config.Env, [`TASK=web.2.${t.ID}`, 'PLAIN', 'KEEP={{x']);
  assert.deepEqual(hostConfig.Mounts, [
    {
      Type: 'volume',
      Source: 'data-2',
      Target: '/data/web',
      ReadOnly: false,
      VolumeOptions: {
        NoCopy: false,
        Labels: { owner: 'node1' },
        DriverConfig: { Name: 'local', Options: { o: 'front' } },
      },
    },
  ]);
  // The task's own spec is left as it was (the expansion is per container).
  assert.equal(t.Spec.ContainerSpec.Hostname, '{{.Node.Hostname}}-{{.Service.Name}}');
});

test("a bad template in the spec is the task's rejection reason, named after the field", () => {
  const ctx = templateContext(task(), 'web.2.x', 'node1', node);
  assert.throws(() => expandContainerSpec({ Image: 'b', Hostname: '{{.Nope}}' }, ctx), {
    message: /^expanding hostname failed: template: expansion:1:2: executing "expansion" at <.Nope>/,
  });
  assert.throws(() => expandContainerSpec({ Image: 'b', Env: ['A={{.Nope'] }, ctx), {
    message: 'expanding env failed: expanding env "A={{.Nope": template: expansion:1: unclosed action',
  });
  assert.throws(
    () => expandContainerSpec({ Image: 'b', Mounts: [{ Type: 'volume', Source: '{{bad}}', Target: '/d' }] }, ctx),
    {
      message:
        'expanding mounts failed: expanding mount source "{{bad}}": template: expansion:1: function "bad" not defined',
    },
  );
  const t = task();
  t.Spec.ContainerSpec = { Image: 'busybox', Hostname: '{{.Node.Hostname' };
  assert.throws(() => taskContainerConfig(t, 'node1', node), {
    message: 'expanding hostname failed: template: expansion:1: unclosed action',
  });
});
