import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  allocateMachineIndex,
  hubAddress,
  machineAddress,
  machineIndex,
  withPrefixLen,
} from '../../../src/lab/addresses.js';
import { checkMachineName, checkSubnet, LabNames, machinePaths, resolveSettings } from '../../../src/lab/settings.js';
import { formatTable } from '../../../src/lab/table.js';
import { mentions } from '../../../src/lab/sweep.js';
import { withLabLock, writeLab } from '../../../src/lab/state.js';
import { Lab } from '../../../src/lab/lab.js';

test('lab addresses: hub first, machines the lowest free ones after it', () => {
  assert.equal(hubAddress('192.168.99.0/24'), '192.168.99.1');
  assert.equal(withPrefixLen('192.168.99.0/24', '192.168.99.7'), '192.168.99.7/24');
  assert.equal(allocateMachineIndex('192.168.99.0/24', []), 2);
  assert.equal(allocateMachineIndex('192.168.99.0/24', [2, 3, 5]), 4);
  assert.equal(machineAddress('192.168.99.0/24', 4), '192.168.99.4');
  assert.equal(machineIndex('192.168.99.0/24', '192.168.99.4'), 4);
  assert.equal(machineAddress('192.168.0.0/16', 258), '192.168.1.2');
});

test('lab addresses: a full subnet says so and never hands out the broadcast address', () => {
  // /29: 8 addresses; .0 network, .1 hub, .7 broadcast: machines get .2 … .6.
  assert.equal(allocateMachineIndex('192.168.5.0/29', [2, 3, 4, 5]), 6);
  assert.throws(() => allocateMachineIndex('192.168.5.0/29', [2, 3, 4, 5, 6]), /no free address/);
});

test('lab settings: flags over environment over defaults', () => {
  const d = resolveSettings({}, {});
  assert.deepEqual(d, { labDir: '/var/lib/shoal-lab', prefix: 'shlab', subnet: '192.168.99.0/24' });
  const e = resolveSettings(
    {},
    { SHOAL_LAB_DIR: '/tmp/x/', SHOAL_LAB_PREFIX: 'p1', SHOAL_LAB_SUBNET: '192.168.7.9/24' },
  );
  assert.deepEqual(e, { labDir: '/tmp/x', prefix: 'p1', subnet: '192.168.7.0/24' });
  const f = resolveSettings(
    { labDir: '/tmp/y', prefix: 'p2', subnet: '192.168.8.0/25' },
    { SHOAL_LAB_DIR: '/tmp/x', SHOAL_LAB_PREFIX: 'p1' },
  );
  assert.deepEqual(f, { labDir: '/tmp/y', prefix: 'p2', subnet: '192.168.8.0/25' });
});

test('lab settings: bad prefixes, subnets and machine names are refused', () => {
  assert.throws(() => resolveSettings({ prefix: 'Bad_Prefix' }, {}), /invalid lab prefix/);
  assert.throws(() => checkSubnet('172.17.5.0/24'), /overlaps 172\.17\.0\.0\/16/);
  assert.throws(() => checkSubnet('10.1.0.0/24'), /overlaps 10\.0\.0\.0\/8/);
  assert.throws(() => checkSubnet('192.168.0.0/30'), /between 16 and 29/);
  assert.throws(() => checkSubnet('192.168.0.0'), /invalid subnet/);
  assert.equal(checkMachineName('sw1'), 'sw1');
  assert.throws(() => checkMachineName('-x'), /Invalid machine name/);
  assert.throws(() => checkMachineName('a/b'), /Invalid machine name/);
});

test('lab names: namespaces by prefix, paths under the lab directory', () => {
  const n = new LabNames('shlab');
  assert.equal(n.hubNs, 'shlab-hub');
  assert.equal(n.machineNs('sw1'), 'shlab-m-sw1');
  assert.ok(n.ownsNs('shlab-m-sw1'));
  assert.ok(n.ownsNs('shlab-hub'));
  assert.ok(!n.ownsNs('shlab2-m-sw1'));
  assert.ok(!n.ownsNs('other'));
  assert.ok(n.hubVeth(65534).length <= 15);
  assert.equal(machinePaths('/lab', 'sw1').socket, '/lab/machines/sw1/shoal.sock');
});

test('ls table: columns padded as docker-machine prints them, no trailing blanks', () => {
  const out = formatTable(
    ['NAME', 'STATE', 'URL'],
    [
      ['sw1', 'Running', 'unix:///a'],
      ['longer-name', 'Stopped', ''],
    ],
  );
  assert.equal(
    out,
    ['NAME          STATE     URL', 'sw1           Running   unix:///a', 'longer-name   Stopped', ''].join('\n'),
  );
  assert.equal(formatTable(['NAME', 'STATE'], []), 'NAME   STATE\n');
});

test('sweep: an argument mentions the lab directory only as a whole path component', () => {
  assert.ok(mentions('/lab', '/lab'));
  assert.ok(mentions('unix:///lab/machines/a/shoal.sock', '/lab'));
  assert.ok(mentions('--lab-dir=/lab', '/lab/'));
  assert.ok(!mentions('/lab2/machines', '/lab'));
  assert.ok(!mentions('/other', '/lab'));
});

test('lab lock: holders take turns, and a lock left by a dead process is taken over', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lablock-'));
  try {
    const order: string[] = [];
    const hold = (tag: string) =>
      withLabLock(dir, async () => {
        order.push(`${tag}+`);
        await new Promise((r) => setTimeout(r, 30));
        order.push(`${tag}-`);
      });
    await Promise.all([hold('a'), hold('b'), hold('c')]);
    for (let i = 0; i < order.length; i += 2)
      assert.equal(order[i].slice(0, -1), order[i + 1].slice(0, -1), `overlap: ${order.join(' ')}`);
    // No process has PID 2^22 + 1 (above pid_max): the lock is stale.
    fs.writeFileSync(path.join(dir, 'lab.lock'), String(4194305));
    assert.equal(await withLabLock(dir, async () => 'taken', 2000), 'taken');
    assert.ok(!fs.existsSync(path.join(dir, 'lab.lock')));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('an existing lab keeps the prefix and subnet it was made with', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'labopen-'));
  try {
    const fresh = Lab.open({ labDir: dir, prefix: 'p1', subnet: '192.168.7.0/24' });
    assert.equal(fresh.registryAddress, '192.168.7.1:5000');
    assert.equal(fresh.names.hubNs, 'p1-hub');
    writeLab(dir, { prefix: 'p1', subnet: '192.168.7.0/24' });
    // Defaults (nothing asked explicitly) give way to what the lab was made with.
    const later = Lab.open({ labDir: dir, prefix: 'shlab', subnet: '192.168.99.0/24' });
    assert.equal(later.settings.prefix, 'p1');
    assert.equal(later.registryAddress, '192.168.7.1:5000');
    assert.throws(
      () => Lab.open({ labDir: dir, prefix: 'p1', subnet: '192.168.8.0/24' }, { subnet: true }),
      /uses subnet 192\.168\.7\.0\/24/,
    );
    assert.throws(
      () => Lab.open({ labDir: dir, prefix: 'p2', subnet: '192.168.7.0/24' }, { prefix: true }),
      /uses prefix p1/,
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
