import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import net from 'node:net';
import * as dnsPacket from 'dns-packet';
import { DnsServer, upstreamsFromResolvConf } from '../../src/net/dns-server.js';
import { emptyZone } from '../../src/net/dns-zone.js';
import { freePort } from '../helpers/free-port.js';

// The node resolver on loopback (asker 127.0.0.1 stands for a container's gateway address),
// with an in-process upstream on loopback standing for the host's resolver.
let server: DnsServer;
let upstream: dgram.Socket;
let port: number;

function queryUdp(name: string, type: 'A' | 'AAAA' = 'A'): Promise<dnsPacket.Packet> {
  const sock = dgram.createSocket('udp4');
  return new Promise((resolve, reject) => {
    sock.on('message', (m) => {
      sock.close();
      resolve(dnsPacket.decode(m));
    });
    sock.on('error', reject);
    sock.send(
      dnsPacket.encode({ type: 'query', id: 7, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type, name }] }),
      port,
      '127.0.0.1',
    );
  });
}

function queryTcp(name: string): Promise<dnsPacket.Packet> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    let buf = Buffer.alloc(0);
    sock.on('data', (b) => {
      buf = Buffer.concat([buf, b]);
      if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        sock.end();
        resolve(dnsPacket.decode(buf.subarray(2, 2 + buf.readUInt16BE(0))));
      }
    });
    sock.on('error', reject);
    sock.write(dnsPacket.streamEncode({ type: 'query', id: 9, questions: [{ type: 'A', name }] }));
  });
}

const addresses = (p: dnsPacket.Packet) => (p.answers ?? []).map((a) => (a as { data: string }).data).sort();

before(async () => {
  upstream = dgram.createSocket('udp4');
  upstream.on('message', (m, r) => {
    const q = dnsPacket.decode(m);
    upstream.send(
      dnsPacket.encode({
        type: 'response',
        id: q.id,
        questions: q.questions,
        answers: [{ type: 'A', name: q.questions![0].name, ttl: 5, data: '198.51.100.1' }],
      }),
      r.port,
      r.address,
    );
  });
  await new Promise<void>((r) => upstream.bind(0, '127.0.0.1', () => r()));
  port = await freePort();
  server = new DnsServer({
    address: '127.0.0.1',
    port,
    upstreams: [{ address: '127.0.0.1', port: upstream.address().port }],
  });
  await server.start();
  const zone = emptyZone();
  zone.askers['127.0.0.1'] = ['app'];
  zone.names.app = { web: ['10.0.1.2'], 'tasks.web': ['10.0.1.3', '10.0.1.4'] };
  server.setZone(zone);
});

after(async () => {
  await server?.stop();
  upstream?.close();
});

test('resolver over UDP: swarm names answered with the TTL Docker uses, AAAA empty, others forwarded', async () => {
  const web = await queryUdp('web');
  assert.equal(web.id, 7);
  assert.deepEqual(addresses(web), ['10.0.1.2']);
  assert.equal((web.answers![0] as { ttl?: number }).ttl, 600);
  assert.deepEqual(addresses(await queryUdp('tasks.web')), ['10.0.1.3', '10.0.1.4']);
  const v6 = await queryUdp('web', 'AAAA');
  assert.equal((v6 as { rcode?: string }).rcode, 'NOERROR');
  assert.deepEqual(v6.answers, []);
  assert.deepEqual(addresses(await queryUdp('example.org')), ['198.51.100.1']);
});

test('resolver over TCP: same answers, length-prefixed', async () => {
  assert.deepEqual(addresses(await queryTcp('tasks.web')), ['10.0.1.3', '10.0.1.4']);
  assert.deepEqual(addresses(await queryTcp('example.org')), ['198.51.100.1']);
});

test('a zone change is visible to the next query', async () => {
  const zone = emptyZone();
  zone.askers['127.0.0.1'] = ['app'];
  zone.names.app = { web: ['10.0.1.2'], 'tasks.web': ['10.0.1.3'] };
  server.setZone(zone);
  assert.deepEqual(addresses(await queryUdp('tasks.web')), ['10.0.1.3']);
});

test('host resolvers come from resolv.conf nameserver lines', () => {
  assert.deepEqual(upstreamsFromResolvConf('search x\nnameserver 10.1.2.3\n# nameserver 9.9.9.9\nnameserver ::1\n'), [
    { address: '10.1.2.3', port: 53 },
  ]);
});
