import { test } from 'node:test';
import assert from 'node:assert/strict';
import { watchSwarmEvents, type SwarmEvent } from '../../../../src/manager/events/swarm-events.js';
import { EventLog, eventMatches } from '../../../../src/engine/events.js';
import { MemoryStore } from '../../../helpers/memory-store.js';
import { makeNode, makeService, until } from '../../../helpers/swarm-fixtures.js';
import { newSwarmId } from '../../../../src/util/ids.js';

// Store changes become dockerd 20.10's swarm events (daemon/events.go): shape, attributes, filters.

test('service create, update (image, replicas) and remove become swarm events', async () => {
  const store = new MemoryStore();
  const seen: SwarmEvent[] = [];
  const off = watchSwarmEvents(store, (e) => seen.push(e));
  const s = makeService('web');
  await store.commit([{ kind: 'services', op: 'create', object: s }]);
  const s1 = store.get('services', s.ID)!;
  s1.Spec.TaskTemplate.ContainerSpec!.Image = 'nginx:1';
  s1.Spec.Mode = { Replicated: { Replicas: 3 } };
  s1.UpdatedAt = new Date(Date.parse(s1.CreatedAt) + 5000).toISOString();
  await store.commit([{ kind: 'services', op: 'update', object: s1 }]);
  await store.commit([{ kind: 'services', op: 'delete', id: s.ID }]);
  await until('three events', () => seen.length === 3);
  off();
  assert.deepEqual(
    seen.map((e) => [e.Type, e.Action, e.scope, e.Actor.ID]),
    [
      ['service', 'create', 'swarm', s.ID],
      ['service', 'update', 'swarm', s.ID],
      ['service', 'remove', 'swarm', s.ID],
    ],
  );
  assert.deepEqual(seen[0].Actor.Attributes, { name: 'web' });
  assert.deepEqual(seen[1].Actor.Attributes, {
    name: 'web',
    'image.old': 'busybox',
    'image.new': 'nginx:1',
    'replicas.old': '1',
    'replicas.new': '3',
  });
  // Create and update carry the object's own times, as dockerd's eventTimestamp does.
  assert.equal(seen[0].timeNano, Date.parse(s.CreatedAt) * 1e6);
  assert.equal(seen[1].time, Math.floor(Date.parse(s1.UpdatedAt) / 1000));
});

test('a node update names the changed state and availability; tasks and the cluster make no event', async () => {
  const store = new MemoryStore();
  const n = makeNode(newSwarmId(), { hostname: 'h1' });
  await store.commit([{ kind: 'nodes', op: 'create', object: n }]);
  const seen: SwarmEvent[] = [];
  const off = watchSwarmEvents(store, (e) => seen.push(e));
  const n1 = store.get('nodes', n.ID)!;
  n1.Status.State = 'down';
  n1.Spec.Availability = 'drain';
  await store.commit([{ kind: 'nodes', op: 'update', object: n1 }]);
  await until('one event', () => seen.length === 1);
  off();
  assert.equal(seen[0].Type, 'node');
  assert.deepEqual(seen[0].Actor.Attributes, {
    name: 'h1',
    'state.old': n.Status.State,
    'state.new': 'down',
    'availability.old': 'active',
    'availability.new': 'drain',
  });
});

test('docker events filters: scope, type, service by name or ID prefix', () => {
  const log = new EventLog();
  const seen: string[] = [];
  log.emit('container', 'start', 'c'.repeat(64), { name: 'box', image: 'busybox' });
  log.publish({
    Type: 'service',
    Action: 'create',
    Actor: { ID: 'abc123', Attributes: { name: 'web' } },
    scope: 'swarm',
    time: 1,
    timeNano: 1e9,
  });
  log.publish({
    Type: 'network',
    Action: 'create',
    Actor: { ID: 'def456', Attributes: { name: 'net' } },
    scope: 'swarm',
    time: 1,
    timeNano: 1e9,
  });
  const pick = (f: Record<string, string[]>) =>
    log
      .history(0, Date.now() / 1000 + 1)
      .filter((e) => eventMatches(e, new Map(Object.entries(f))))
      .map((e) => `${e.scope}/${e.Type}`);
  seen.push(...pick({ scope: ['swarm'] }));
  assert.deepEqual(seen, ['swarm/service', 'swarm/network']);
  assert.deepEqual(pick({ scope: ['local'] }), ['local/container']);
  assert.deepEqual(pick({ type: ['service'] }), ['swarm/service']);
  assert.deepEqual(pick({ service: ['web'] }), ['swarm/service']);
  assert.deepEqual(pick({ service: ['abc'] }), ['swarm/service']);
  assert.deepEqual(pick({ service: ['nope'] }), []);
  assert.deepEqual(pick({ network: ['net'] }), ['swarm/network']);
});
