import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nodeMatches, parseConstraint, parseConstraints } from '../../../../src/manager/scheduler/constraint.js';
import { makeNode } from '../../../helpers/swarm-fixtures.js';

test('constraint parsing accepts == and != with spaces', () => {
  assert.deepEqual(parseConstraint('node.role == manager'), { key: 'node.role', op: '==', value: 'manager' });
  assert.deepEqual(parseConstraint('node.labels.zone!=east'), { key: 'node.labels.zone', op: '!=', value: 'east' });
  assert.deepEqual(parseConstraint('node.ip==10.0.0.0/8'), { key: 'node.ip', op: '==', value: '10.0.0.0/8' });
});

test("invalid constraints give Docker's messages", () => {
  assert.throws(() => parseConstraint('node.role=manager'), {
    message: 'constraint expected one operator from ==, !=',
  });
  assert.throws(() => parseConstraint('node.role>manager'), {
    message: 'constraint expected one operator from ==, !=',
  });
  assert.throws(() => parseConstraint('1node==x'), { message: "key '1node' is invalid" });
  assert.throws(() => parseConstraint('==x'), { message: "key '' is invalid" });
  assert.throws(() => parseConstraint('node.role==<x'), { message: "value '<x' is invalid" });
  assert.throws(() => parseConstraint('node.role=='), { message: "value '' is invalid" });
  assert.throws(() => parseConstraints(['node.role==manager', 'bad']), {
    message: 'constraint expected one operator from ==, !=',
  });
});

test('node attributes match case-insensitively', () => {
  const n = makeNode('abc123', {
    hostname: 'Worker-1',
    role: 'manager',
    labels: { zone: 'East' },
    engineLabels: { disk: 'ssd' },
    addr: '192.168.5.7',
    arch: 'x86_64',
    os: 'linux',
  });
  const m = (e: string) => nodeMatches(parseConstraints([e]), n);
  assert.ok(m('node.id==abc123'));
  assert.ok(m('node.hostname==worker-1'));
  assert.ok(m('node.hostname!=worker-2'));
  assert.ok(m('node.role==manager'));
  assert.ok(!m('node.role==worker'));
  assert.ok(m('node.platform.os==linux'));
  assert.ok(m('node.platform.arch==X86_64'));
  assert.ok(m('node.labels.zone==east'));
  assert.ok(!m('node.labels.Zone==east'), 'label names are case sensitive');
  assert.ok(m('engine.labels.disk==ssd'));
  assert.ok(m('NODE.LABELS.zone==east'), 'key prefixes are case-insensitive');
});

test('missing attributes are empty: == fails, != matches', () => {
  const n = makeNode('n1');
  assert.ok(!nodeMatches(parseConstraints(['node.labels.zone==east']), n));
  assert.ok(nodeMatches(parseConstraints(['node.labels.zone!=east']), n));
  assert.ok(nodeMatches(parseConstraints(['engine.labels.x!=y']), n));
});

test('node.ip matches an address or a CIDR; malformed never matches', () => {
  const n = makeNode('n1', { addr: '10.1.2.3' });
  const m = (e: string) => nodeMatches(parseConstraints([e]), n);
  assert.ok(m('node.ip==10.1.2.3'));
  assert.ok(!m('node.ip!=10.1.2.3'));
  assert.ok(m('node.ip==10.0.0.0/8'));
  assert.ok(m('node.ip!=192.168.0.0/16'));
  assert.ok(!m('node.ip==10.1.2'));
  assert.ok(!m('node.ip!=10.1.2'));
});

test('unknown keys never match; all constraints must hold', () => {
  const n = makeNode('n1', { role: 'worker' });
  assert.ok(!nodeMatches(parseConstraints(['node.colour==red']), n));
  assert.ok(!nodeMatches(parseConstraints(['node.role==worker', 'node.id==other']), n));
  assert.ok(nodeMatches(parseConstraints(['node.role==worker', 'node.id!=other']), n));
  assert.ok(nodeMatches([], n));
});
