/**
 * Calls one cluster RPC from inside a node's netns (run with `ip netns exec`), for negative
 * checks on port 2377. Prints {"ok":bool,"code":n,"details":"…"}.
 *   node rpc-probe.js <addr:port> <tls|insecure|plaintext> <certDir|-> <Service.Method> [jsonRequest]
 */
import fs from 'node:fs';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { clientCredentials, insecureCredentials, jsonCodec, rpcPath, type RpcService } from '../../src/cluster/rpc.js';

const [addr, mode, certDir, fullMethod, body] = process.argv.slice(2);
const [service, method] = fullMethod.split('.');
let creds: grpc.ChannelCredentials;
if (mode === 'plaintext') creds = grpc.credentials.createInsecure();
else if (mode === 'insecure') creds = insecureCredentials();
else {
  const f = (n: string) => fs.readFileSync(path.join(certDir, n));
  creds =
    certDir === '-'
      ? clientCredentials(Buffer.from(fs.readFileSync(process.env.ROOT_CA!)))
      : clientCredentials(f('swarm-root-ca.crt'), f('swarm-node.crt'), f('swarm-node.key'));
}
// Any method and body on purpose (negative checks): the raw gRPC client, not the contract's typed one.
const client = new grpc.Client(addr, creds);
try {
  const res = await new Promise((resolve, reject) =>
    client.makeUnaryRequest(
      rpcPath(service as RpcService, method),
      jsonCodec.serialize,
      jsonCodec.deserialize,
      body ? JSON.parse(body) : {},
      new grpc.Metadata(),
      { deadline: Date.now() + 5000 },
      (e, v) => (e ? reject(e) : resolve(v)),
    ),
  );
  console.log(JSON.stringify({ ok: true, res }));
} catch (e) {
  const err = e as grpc.ServiceError;
  console.log(JSON.stringify({ ok: false, code: err.code, details: err.details }));
}
client.close();
