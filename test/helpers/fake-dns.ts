import dgram from 'node:dgram';
import * as dnsPacket from 'dns-packet';

/**
 * A stand-in for the host's resolver, run inside a test namespace on loopback:
 * `node fake-dns.js <address> <port> <answer-ip>`. Names ending in `.test` resolve to
 * the answer; anything else is NXDOMAIN.
 */
const [address, port, answer] = process.argv.slice(2);
const sock = dgram.createSocket('udp4');
sock.on('message', (msg, rinfo) => {
  const q = dnsPacket.decode(msg);
  const question = q.questions?.[0];
  const known = !!question && question.name.toLowerCase().endsWith('.test');
  const reply = dnsPacket.encode({
    type: 'response',
    id: q.id,
    flags: dnsPacket.RECURSION_AVAILABLE | (known ? 0 : 3) /* NXDOMAIN */,
    questions: q.questions ?? [],
    answers:
      known && question.type === 'A' ? [{ type: 'A', name: question.name, class: 'IN', ttl: 60, data: answer }] : [],
  });
  sock.send(reply, rinfo.port, rinfo.address);
});
sock.bind(Number(port), address, () => process.stdout.write('ready\n'));
process.on('SIGTERM', () => process.exit(0));
