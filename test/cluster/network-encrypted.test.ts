import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { run, type RunResult } from '../../src/util/run.js';
import { createSwarmLab, type SwarmLab } from '../helpers/swarm-lab.js';
import { waitFor as poll, sleep } from '../helpers/process.js';

// Needs root: a three-machine lab driven by the real docker CLI, wireguard-go and wg (scripts/setup),
// and tcpdump on the lab's own bridge. Missing tools fail the run: this test never skips.

const ROTATION_MS = 40_000;
const waitFor = <T>(what: string, fn: () => Promise<T | undefined | false>, ms = 90_000) => poll(what, fn, ms, 500);
const tag = () => randomBytes(6).toString('hex');

interface Tunnel {
  PublicKey: string;
  Address: string;
  Port: number;
  Epoch: number;
  State: string;
  Mode?: string;
  Message?: string;
}

describe('encrypted overlays (--opt encrypted) on a three-machine lab', () => {
  let swarm: SwarmLab;
  const d = (m: string, args: string[]) => swarm.d(m, args);
  const ns = (m: string) => `${swarm.lab.prefix}-m-${m}`;
  const inNs = (name: string, cmd: string, args: string[], allowFail = true) =>
    run('nsenter', [`--net=/run/netns/${name}`, '--', cmd, ...args], { allowFail });
  const wgIf = (m: string) => `wg${swarm.nodeIds.get(m)!.slice(0, 10)}`;
  const ok = async (m: string, args: string[]) => {
    const r = await d(m, args);
    assert.equal(r.code, 0, `docker ${args.join(' ')} on ${m}: ${r.stderr}`);
    return r.stdout.trim();
  };
  /** The node's Tunnel as the Engine API returns it (the docker CLI's node inspect keeps Docker's fields only). */
  const tunnelOf = async (m: string): Promise<Tunnel | undefined> => {
    const socket = (await swarm.lab.dockerHost('m1')).replace(/^unix:\/\//, '');
    const body = await new Promise<string>((resolve, reject) => {
      http
        .get({ socketPath: socket, path: `/v1.41/nodes/${swarm.nodeIds.get(m)}` }, (res) => {
          let b = '';
          res.on('data', (c: Buffer) => {
            b += c.toString();
          });
          res.on('end', () => resolve(b));
        })
        .on('error', reject);
    });
    return (JSON.parse(body) as { Tunnel?: Tunnel }).Tunnel;
  };
  const statusMessage = async (m: string) =>
    (await d('m1', ['node', 'inspect', '--format', '{{.Status.Message}}', swarm.nodeIds.get(m)!])).stdout.trim();
  const srvOn = async (m: string) =>
    waitFor(
      `srv container on ${m}`,
      async () =>
        (await d(m, ['ps', '-q', '--filter', 'label=com.docker.swarm.service.name=srv'])).stdout.trim().split('\n')[0],
    );
  const ipOn = async (m: string, container: string, network: string) =>
    JSON.parse(await ok(m, ['inspect', '--format', '{{json .NetworkSettings.Networks}}', container]))[network]
      ?.IPAddress as string;
  /** From the client container on m2: sends a line to srv at `ip`; the answer is PONG when it got there. */
  const send = (cli: string, ip: string, line: string): Promise<RunResult> =>
    d('m2', ['exec', cli, 'sh', '-c', `echo ${line} | nc -w 3 ${ip} 7000`]);
  const talks = (cli: string, ip: string, line: string) =>
    waitFor(`${line} to ${ip} answered`, async () => (await send(cli, ip, line)).stdout.includes('PONG'), 60_000);

  let cli = '';
  const ips = new Map<string, { plain: string; secret: string }>();
  let secretVni = 0;

  /** tcpdump on the lab bridge, inside the lab's hub namespace only. */
  async function capture(): Promise<{ stop(): Promise<string> }> {
    const file = path.join(swarm.lab.labDir, `capture-${tag()}.pcap`);
    const child: ChildProcess = spawn(
      'nsenter',
      [
        `--net=/run/netns/${swarm.lab.prefix}-hub`,
        '--',
        'tcpdump',
        '--immediate-mode',
        '-i',
        'labbr0',
        '-nn',
        '-U',
        '-s',
        '0',
        '-w',
        file,
        'udp',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let err = '';
    child.stderr!.on('data', (b: Buffer) => {
      err += b.toString();
    });
    await poll(
      'tcpdump listening',
      () => /listening on/.test(err) || (child.exitCode !== null && Promise.reject(new Error(err))),
      10_000,
      50,
    );
    await sleep(300);
    return {
      async stop() {
        const done = new Promise((r) => child.once('exit', r));
        child.kill('SIGINT');
        await done;
        const r = await run('tcpdump', ['-r', file, '-nn', '-A', '-vv'], { allowFail: true });
        return r.stdout;
      },
    };
  }

  before(async () => {
    for (const tool of ['wireguard-go', 'wg', 'tcpdump']) {
      const r = await run('sh', ['-c', `command -v ${tool}`], { allowFail: true });
      assert.equal(r.code, 0, `${tool} is not installed: run scripts/setup`);
    }
    assert.ok(fs.existsSync('/dev/net/tun'), '/dev/net/tun is missing');
    // Daemons inherit it through the lab: keys rotate every 40 s here instead of 12 h.
    process.env.SHOAL_OVERLAY_KEY_ROTATION_MS = String(ROTATION_MS);
    swarm = await createSwarmLab({ managers: ['m1'], workers: ['m2', 'm3'], busybox: true });
  });

  after(async () => {
    delete process.env.SHOAL_OVERLAY_KEY_ROTATION_MS;
    await swarm?.cleanup();
  });

  it('network create -d overlay --opt encrypted: an overlay whose inspect says encrypted, beside a plain one', async () => {
    await ok('m1', ['network', 'create', '-d', 'overlay', '--opt', 'encrypted', 'secret']);
    await ok('m1', ['network', 'create', '-d', 'overlay', 'plain']);
    const n = await waitFor('secret allocated', async () => {
      const x = JSON.parse((await d('m1', ['network', 'inspect', 'secret'])).stdout)[0];
      return x.IPAM.Config.length ? x : undefined;
    });
    assert.deepEqual(n.Options.encrypted, '');
    secretVni = Number(n.Options['com.docker.network.driver.overlay.vxlanid_list']);
    assert.ok(secretVni >= 4096);
    const p = JSON.parse((await d('m1', ['network', 'inspect', 'plain'])).stdout)[0];
    assert.equal(p.Options.encrypted, undefined);
  });

  it('containers on the encrypted network on different machines talk; every node reports a ready tunnel', async () => {
    await ok('m1', [
      'service',
      'create',
      '--detach',
      '--name',
      'srv',
      '--mode',
      'global',
      '--network',
      'plain',
      '--network',
      'secret',
      'busybox',
      'sh',
      '-c',
      'while true; do nc -l -p 7000 -e sh -c "read l; echo got-\\$l >&2; echo PONG"; done',
    ]);
    await ok('m1', [
      'service',
      'create',
      '--detach',
      '--name',
      'cli',
      '--constraint',
      'node.hostname==m2',
      '--network',
      'plain',
      '--network',
      'secret',
      'busybox',
      'sleep',
      '100000',
    ]);
    await waitFor(
      'srv 3/3 and cli 1/1',
      async () => (await swarm.replicas('srv')) === '3/3' && (await swarm.replicas('cli')) === '1/1',
    );
    cli = await waitFor('cli container', async () =>
      (await d('m2', ['ps', '-q', '--filter', 'label=com.docker.swarm.service.name=cli'])).stdout.trim(),
    );
    for (const m of ['m1', 'm3']) {
      const c = await srvOn(m);
      ips.set(m, { plain: await ipOn(m, c, 'plain'), secret: await ipOn(m, c, 'secret') });
      assert.match(ips.get(m)!.secret, /^\d+\.\d+\.\d+\.\d+$/);
    }
    await talks(cli, ips.get('m3')!.secret, `hello-${tag()}`);
    await talks(cli, ips.get('m3')!.plain, `hello-${tag()}`);
    for (const m of ['m1', 'm2', 'm3']) {
      const t = await waitFor(`${m} tunnel ready`, () => tunnelOf(m).then((x) => x?.State === 'ready' && x));
      assert.equal(Buffer.from(t.PublicKey, 'base64').length, 32);
      assert.match(t.Address, /^100\./);
      assert.ok(t.Mode === 'userspace' || t.Mode === 'kernel');
    }
  });

  it("a capture on the lab bridge: the plain overlay's payload in clear, the encrypted one's never (it crossed as WireGuard)", async () => {
    const plainLine = `PLAIN-${tag()}`;
    const secretLine = `SECRET-${tag()}`;
    const cap = await capture();
    try {
      await talks(cli, ips.get('m3')!.plain, plainLine);
      await talks(cli, ips.get('m3')!.secret, secretLine);
      // The last packets reach the capture file before it stops.
      await sleep(1500);
    } finally {
      const dump = await cap.stop();
      const summary = dump
        .split('\n')
        .filter((l) => /^\d/.test(l))
        .slice(0, 40)
        .join('\n');
      assert.ok(dump.includes(plainLine), `plain payload seen in clear on the lab bridge; capture:\n${summary}`);
      assert.ok(!dump.includes(secretLine), 'encrypted payload never in clear on the lab bridge');
      assert.ok(!new RegExp(`vni ${secretVni}\\b`).test(dump), 'no VXLAN of the encrypted network on the lab bridge');
      assert.match(dump, /\.51820[: ]/, `WireGuard packets on the lab bridge; capture:\n${summary}`);
    }
    // And it did arrive: the task on m3 logged the line.
    const logs = await d('m3', ['logs', await srvOn('m3')]);
    assert.ok((logs.stdout + logs.stderr).includes(`got-${secretLine}`));
  });

  it('keys rotate on the schedule: every node has a new key and epoch, traffic goes on', async () => {
    const before = await tunnelOf('m2');
    const after = await waitFor(
      'a scheduled rotation',
      async () => {
        const t = await tunnelOf('m2');
        return t && t.Epoch > before!.Epoch && t.PublicKey !== before!.PublicKey && t;
      },
      ROTATION_MS * 2 + 30_000,
    );
    assert.equal(after.State, 'ready');
    await talks(cli, ips.get('m3')!.secret, `after-rotation-${tag()}`);
  });

  it('a lost tunnel: node inspect and the log say so, nothing goes in clear meanwhile, it comes back by itself', async () => {
    const ifname = wgIf('m2');
    // The wireguard-go this lab's m2 daemon started (found by its exact command line), ended by PID.
    const pids = fs
      .readdirSync('/proc')
      .filter((p) => /^\d+$/.test(p))
      .filter((p) => {
        try {
          return fs.readFileSync(`/proc/${p}/cmdline`, 'utf8') === `wireguard-go\0-f\0${ifname}\0`;
        } catch {
          return false;
        }
      });
    assert.equal(pids.length, 1, `one wireguard-go for ${ifname}`);
    const lost = `LOST-${tag()}`;
    const cap = await capture();
    try {
      process.kill(Number(pids[0]), 'SIGKILL');
      const down = await waitFor(
        'm2 tunnel down in node inspect',
        async () => {
          const msg = await statusMessage('m2');
          return /^encrypted overlays: tunnel down/.test(msg) && msg;
        },
        15_000,
      );
      assert.match(down, /wireguard-go exited|is gone/);
      assert.equal((await tunnelOf('m2'))?.State, 'down');
      assert.ok(
        !(await send(cli, ips.get('m3')!.secret, lost)).stdout.includes('PONG'),
        'no traffic while the tunnel is down',
      );
      await waitFor('m2 tunnel ready again', () => tunnelOf('m2').then((t) => t?.State === 'ready'), 30_000);
      assert.equal(await statusMessage('m2'), '');
    } finally {
      const dump = await cap.stop();
      assert.ok(!dump.includes(lost), 'nothing in clear while the tunnel was down');
    }
    await talks(cli, ips.get('m3')!.secret, `back-${tag()}`);
    const log = fs.readFileSync(path.join(swarm.lab.labDir, 'machines', 'm2', 'shoald.log'), 'utf8');
    assert.match(log, /overlay tunnel (lost|down)/);
  });

  it('a removed node: peers drop its key, keys rotate, and its old key gets no handshake; its cleartext VXLAN is dropped', async () => {
    // While m3 is a member its key works: m2 has had a handshake with it.
    const m3 = (await tunnelOf('m3'))!;
    await talks(cli, ips.get('m3')!.secret, `pre-${tag()}`);
    const hs = (await inNs(ns('m2'), 'wg', ['show', wgIf('m2'), 'latest-handshakes'])).stdout;
    assert.ok(
      hs.split('\n').some((l) => l.startsWith(m3.PublicKey) && Number(l.split('\t')[1]) > 0),
      `m2 shook hands with m3: ${hs}`,
    );
    const oldKey = (await inNs(ns('m3'), 'wg', ['show', wgIf('m3'), 'private-key'], false)).stdout.trim();
    const m2Before = (await tunnelOf('m2'))!;

    await ok('m1', ['node', 'rm', '--force', swarm.nodeIds.get('m3')!]);
    const m2After = await waitFor(
      'm2 rotated after the removal',
      () =>
        tunnelOf('m2').then(
          (t) => t && t.Epoch > m2Before.Epoch && t.PublicKey !== m2Before.PublicKey && t.State === 'ready' && t,
        ),
      60_000,
    );
    for (const m of ['m1', 'm2']) {
      await waitFor(
        `${m} dropped m3's key`,
        async () => !(await inNs(ns(m), 'wg', ['show', wgIf(m), 'peers'], false)).stdout.includes(m3.PublicKey),
        30_000,
      );
    }
    // m1 and m2 still talk over the encrypted network with their new keys.
    await talks(cli, ips.get('m1')!.secret, `survivors-${tag()}`);

    // The removed node keeps its old private key and learns m2's new public key (public keys are no secret): no handshake.
    const attacker = `wgx${tag().slice(0, 8)}`;
    const wgGo = spawn('nsenter', [`--net=/run/netns/${ns('m3')}`, '--', 'wireguard-go', '-f', attacker], {
      stdio: 'ignore',
    });
    try {
      await waitFor(
        'attacker interface',
        async () => (await inNs(ns('m3'), 'wg', ['show', attacker])).code === 0,
        10_000,
      );
      const keyFile = path.join(swarm.lab.labDir, `old-${tag()}.key`);
      fs.writeFileSync(keyFile, oldKey + '\n', { mode: 0o600 });
      await inNs(
        ns('m3'),
        'wg',
        [
          'set',
          attacker,
          'private-key',
          keyFile,
          'peer',
          m2After.PublicKey,
          'endpoint',
          `${swarm.ip.get('m2')}:${m2After.Port}`,
          'allowed-ips',
          `${m2After.Address}/32`,
        ],
        false,
      );
      fs.rmSync(keyFile);
      await inNs(ns('m3'), 'ip', ['link', 'set', attacker, 'up'], false);
      await inNs(ns('m3'), 'ip', ['addr', 'add', `${m3.Address}/32`, 'dev', attacker]);
      await inNs(ns('m3'), 'ip', ['route', 'replace', `${m2After.Address}/32`, 'dev', attacker], false);
      const ping = await inNs(ns('m3'), 'busybox', ['ping', '-c', '3', '-W', '2', m2After.Address]);
      assert.notEqual(ping.code, 0, 'the old key reaches nothing');
      const got = (await inNs(ns('m3'), 'wg', ['show', attacker, 'latest-handshakes'], false)).stdout.trim();
      assert.match(got, /\t0$/, `no handshake with the old key: ${got}`);
      assert.ok(!(await inNs(ns('m2'), 'wg', ['show', wgIf('m2'), 'peers'], false)).stdout.includes(m3.PublicKey));
    } finally {
      const done = new Promise((r) => wgGo.once('exit', r));
      await inNs(ns('m3'), 'ip', ['link', 'delete', attacker]);
      wgGo.kill();
      await done;
      fs.rmSync(`/var/run/wireguard/${attacker}.sock`, { force: true });
    }

    // Cleartext VXLAN from the underlay (the lab hub stands for anyone there, a removed node included), with each
    // network's VNI, straight at m2's task: the plain one arrives (the injection works), the encrypted one is dropped.
    const srv2 = await srvOn('m2');
    const pid = await ok('m2', ['inspect', '--format', '{{.State.Pid}}', srv2]);
    const net = async (name: string) => JSON.parse(await ok('m1', ['network', 'inspect', name]))[0];
    const hub = `${swarm.lab.prefix}-hub`;
    for (const [name, expectSeen] of [
      ['plain', true],
      ['secret', false],
    ] as const) {
      const n = await net(name);
      const vni = Number(n.Options['com.docker.network.driver.overlay.vxlanid_list']);
      const target = await ipOn('m2', srv2, name);
      const fake = target.replace(/\.\d+$/, '.250');
      const dev = `vxi${tag().slice(0, 6)}`;
      const sniff = spawn(
        'nsenter',
        [`--net=/proc/${pid}/ns/net`, '--', 'tcpdump', '--immediate-mode', '-i', 'any', '-nn', '-l', 'icmp'],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let seen = '';
      let err = '';
      sniff.stdout!.on('data', (b: Buffer) => {
        seen += b.toString();
      });
      sniff.stderr!.on('data', (b: Buffer) => {
        err += b.toString();
      });
      try {
        await poll('sniffer listening', () => /listening on/.test(err), 10_000, 50);
        await inNs(
          hub,
          'ip',
          [
            'link',
            'add',
            dev,
            'type',
            'vxlan',
            'id',
            String(vni),
            'remote',
            swarm.ip.get('m2')!,
            'dstport',
            '4789',
            'dev',
            'labbr0',
          ],
          false,
        );
        await inNs(hub, 'ip', ['addr', 'add', `${fake}/24`, 'dev', dev], false);
        await inNs(hub, 'ip', ['link', 'set', dev, 'up'], false);
        const mac =
          '02:42:' +
          target
            .split('.')
            .map((b) => Number(b).toString(16).padStart(2, '0'))
            .join(':');
        await inNs(hub, 'ip', ['neigh', 'replace', target, 'lladdr', mac, 'dev', dev, 'nud', 'permanent'], false);
        await inNs(hub, 'busybox', ['ping', '-c', '3', '-W', '1', target]);
        await sleep(500);
      } finally {
        await inNs(hub, 'ip', ['link', 'delete', dev]);
        const done = new Promise((r) => sniff.once('exit', r));
        sniff.kill('SIGINT');
        await done;
      }
      assert.equal(
        seen.includes(fake),
        expectSeen,
        `${name}: injected packets ${expectSeen ? 'arrive' : 'dropped'}: ${seen}`,
      );
    }
  });
});
