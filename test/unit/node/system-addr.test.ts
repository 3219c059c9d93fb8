import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chooseSystemAddr, isGlobalUnicast, type SystemLink } from '../../../src/node/system-addr.js';

const lo: SystemLink = { name: 'lo', up: true, loopback: true, addrs: ['127.0.0.1', '::1'] };
const bridge: SystemLink = {
  name: 'shoal0',
  kind: 'bridge',
  up: true,
  loopback: false,
  addrs: ['172.17.0.1', 'fe80::1'],
};

describe('the address swarm init advertises by default', () => {
  it('a namespace with a veth eth0 and the daemon bridge: eth0', () => {
    assert.equal(
      chooseSystemAddr([
        lo,
        bridge,
        { name: 'eth0', kind: 'veth', up: true, loopback: false, addrs: ['10.99.0.2', 'fe80::2'] },
      ]),
      '10.99.0.2',
    );
  });

  it('a physical device wins over veths and bridges; IPv4 before IPv6 on one link', () => {
    const links: SystemLink[] = [
      lo,
      bridge,
      { name: 'veth1', kind: 'veth', up: true, loopback: false, addrs: ['10.1.0.1'] },
      { name: 'enp3s0', up: true, loopback: false, addrs: ['2001:db8::5', '192.168.1.5'] },
    ];
    assert.equal(chooseSystemAddr(links), '192.168.1.5');
  });

  it("two candidate interfaces: Docker's error naming both", () => {
    const links: SystemLink[] = [
      lo,
      { name: 'eth0', kind: 'veth', up: true, loopback: false, addrs: ['10.0.2.15'] },
      { name: 'eth1', kind: 'veth', up: true, loopback: false, addrs: ['192.168.99.100'] },
    ];
    assert.throws(() => chooseSystemAddr(links), {
      message:
        'could not choose an IP address to advertise since this system has multiple addresses on different interfaces (10.0.2.15 on eth0 and 192.168.99.100 on eth1) - specify one with --advertise-addr',
    });
  });

  it('two addresses on one interface, or none at all', () => {
    assert.throws(
      () => chooseSystemAddr([{ name: 'eth0', up: true, loopback: false, addrs: ['10.0.0.1', '10.0.0.2'] }]),
      {
        message:
          'could not choose an IP address to advertise since this system has multiple addresses on interface eth0 (10.0.0.1 and 10.0.0.2) - specify one with --advertise-addr',
      },
    );
    assert.throws(() => chooseSystemAddr([lo, bridge]), {
      message: "could not find the system's IP address - specify one with --advertise-addr",
    });
  });

  it('global unicast as Go defines it', () => {
    assert.deepEqual(
      ['10.0.0.1', '127.0.0.1', '169.254.1.1', '224.0.0.1', '0.0.0.0', '2001:db8::1', 'fe80::1', '::1', 'ff02::1'].map(
        isGlobalUnicast,
      ),
      [true, false, false, false, false, true, false, false, false],
    );
  });
});
