/**
 * Speaks HTTPS to host:port from inside a netns (run with `ip netns exec`), optionally with a
 * node certificate, to check that etcd's peer port refuses strangers.
 * Prints {"answered":bool,"status":n|null,"error":"…"}.
 *   node tls-probe.js <host> <port> <certDir|-> <plaintext|tls>
 */
import fs from 'node:fs';
import https from 'node:https';
import http from 'node:http';
import path from 'node:path';

const [host, port, certDir, mode] = process.argv.slice(2);
const tlsOpts =
  certDir !== '-'
    ? {
        cert: fs.readFileSync(path.join(certDir, 'swarm-node.crt')),
        key: fs.readFileSync(path.join(certDir, 'swarm-node.key')),
      }
    : {};
const mod = mode === 'plaintext' ? http : https;
const req = mod.get(
  {
    host,
    port: Number(port),
    path: '/members',
    rejectUnauthorized: false,
    timeout: 5000,
    ...(mode === 'plaintext' ? {} : tlsOpts),
  },
  (res) => {
    res.resume();
    console.log(JSON.stringify({ answered: true, status: res.statusCode }));
  },
);
req.on('error', (e) => console.log(JSON.stringify({ answered: false, status: null, error: e.message })));
req.on('timeout', () => {
  req.destroy(new Error('timeout'));
});
