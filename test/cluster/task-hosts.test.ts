import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { createSwarmLab, type SwarmLab } from '../helpers/swarm-lab.js';
import { importBusybox } from '../helpers/busybox.js';
import { waitFor } from '../helpers/process.js';

// Needs root: a one-machine swarm lab (namespace, shoald, etcd, runc), driven by the real docker CLI.
// A task's /etc/hosts names its own address, so `hostname -i` and `getent hosts $(hostname)` work as in Docker.

const IMG = 'hostsbox:latest';

describe('/etc/hosts of a swarm task', () => {
  let swarm: SwarmLab;
  const d = async (args: string[]) => {
    const r = await swarm.d('m1', args);
    assert.equal(r.code, 0, `docker ${args.join(' ')}: ${r.stderr}`);
    return r.stdout.trim();
  };

  before(async () => {
    swarm = await createSwarmLab({ managers: ['m1'] });
    const dir = fs.mkdtempSync(path.join(swarm.lab.labDir, 'img-'));
    // glibc's getent from the host reads /etc/hosts as applications do.
    await importBusybox((args, o) => swarm.lab.docker('m1', args, o), dir, IMG, { hostBinaries: ['/usr/bin/getent'] });
  });
  after(async () => {
    await swarm?.cleanup();
  });

  it('a task on an overlay network: <address> <hostname> <aliases> in /etc/hosts, /etc/hostname matches, hostname -i and getent answer it', async () => {
    await d(['network', 'create', '-d', 'overlay', 'hosts-net']);
    await d([
      'service',
      'create',
      '--detach',
      '--name',
      'hostsvc',
      '--network',
      'name=hosts-net,alias=hostalias',
      IMG,
      'sleep',
      '3000',
    ]);
    const cid = await waitFor(
      'the task container running',
      async () => {
        const id = (await swarm.d('m1', ['ps', '-q', '--filter', 'label=com.docker.swarm.service.name=hostsvc'])).stdout
          .trim()
          .split('\n')[0];
        return id || undefined;
      },
      90_000,
    );
    const task = JSON.parse(
      await d([
        'inspect',
        (await d(['service', 'ps', '-q', '--filter', 'desired-state=running', 'hostsvc'])).split('\n')[0],
      ]),
    )[0];
    const attachment = task.NetworksAttachments.find(
      (a: { Network: { Spec: { Name: string } } }) => a.Network.Spec.Name === 'hosts-net',
    );
    const ip = attachment.Addresses[0].split('/')[0];
    const hostname = await d(['exec', cid, 'hostname']);
    assert.equal(await d(['exec', cid, 'cat', '/etc/hostname']), hostname);
    const hosts = await d(['exec', cid, 'cat', '/etc/hosts']);
    assert.match(hosts, new RegExp(`^${ip.replace(/\./g, '\\.')}\\t${hostname} hostalias$`, 'm'), hosts);
    assert.equal(await d(['exec', cid, 'hostname', '-i']), ip);
    assert.match(
      await d(['exec', cid, 'sh', '-c', 'getent hosts $(hostname)']),
      new RegExp(`^${ip.replace(/\./g, '\\.')}\\s+${hostname}\\b`),
    );
    await d(['service', 'rm', 'hostsvc']);
  });
});
