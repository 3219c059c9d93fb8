import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { addRpcService, jsonCodec, rpcPath, RpcClient, type RpcHandlers } from '../../../src/cluster/rpc.js';

/** A Membership server on loopback without TLS: the contract's checks, not the swarm's trust. */
describe('cluster RPC contract: requests checked at the server edge', () => {
  const server = new grpc.Server();
  let addr = '';
  const seen: unknown[] = [];
  before(async () => {
    const handlers: RpcHandlers<'Membership'> = {
      Join: (call, cb) => {
        seen.push(call.request);
        cb(null, { initialCluster: `m=${call.request.addr}`, clusterToken: 't' });
      },
      Leave: async (call) => {
        throw new Error(`cannot remove ${call.request.nodeId}`);
      },
    };
    addRpcService(server, 'Membership', handlers);
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
    );
    addr = `127.0.0.1:${port}`;
  });
  after(() => server.forceShutdown());

  /** Any bytes to any method: what a broken or hostile peer can send. */
  const raw = (method: string, body: Buffer) => {
    const c = new grpc.Client(addr, grpc.credentials.createInsecure());
    return new Promise<unknown>((resolve, reject) =>
      c.makeUnaryRequest(
        rpcPath('Membership', method),
        (b: Buffer) => b,
        jsonCodec.deserialize,
        body,
        new grpc.Metadata(),
        { deadline: Date.now() + 5000 },
        (e, v) => (e ? reject(e) : resolve(v)),
      ),
    ).finally(() => c.close());
  };

  it('a typed call round-trips', async () => {
    const c = new RpcClient('Membership', addr, grpc.credentials.createInsecure());
    try {
      const r = await c.call('Join', { addr: '10.0.0.5' });
      assert.equal(r.initialCluster, 'm=10.0.0.5');
    } finally {
      c.close();
    }
  });

  it('a body of the wrong shape is INVALID_ARGUMENT and never reaches the handler', async () => {
    const before = seen.length;
    await assert.rejects(
      raw('Join', Buffer.from(JSON.stringify({ addr: 5 }))),
      (e: grpc.ServiceError) => e.code === grpc.status.INVALID_ARGUMENT && /addr/.test(e.details),
    );
    await assert.rejects(
      raw('Join', Buffer.from('null')),
      (e: grpc.ServiceError) => e.code === grpc.status.INVALID_ARGUMENT,
    );
    await assert.rejects(
      raw('Join', Buffer.from('{not json')),
      (e: grpc.ServiceError) => e.code === grpc.status.INVALID_ARGUMENT && /not JSON/.test(e.details),
    );
    assert.equal(seen.length, before);
  });

  it('unknown fields pass, as protobuf ignores them', async () => {
    const r = (await raw('Join', Buffer.from(JSON.stringify({ addr: '10.0.0.6', future: true })))) as {
      initialCluster: string;
    };
    assert.equal(r.initialCluster, 'm=10.0.0.6');
  });

  it('a handler that rejects answers INTERNAL, and the server lives on', async () => {
    await assert.rejects(
      raw('Leave', Buffer.from(JSON.stringify({ nodeId: 'n1' }))),
      (e: grpc.ServiceError) => e.code === grpc.status.INTERNAL && /cannot remove n1/.test(e.details),
    );
    const r = (await raw('Join', Buffer.from(JSON.stringify({ addr: '10.0.0.7' })))) as { initialCluster: string };
    assert.equal(r.initialCluster, 'm=10.0.0.7');
  });

  it('a wrong method name or body does not compile', () => {
    const c = new RpcClient('Membership', addr, grpc.credentials.createInsecure());
    c.close();
    // Type checks only: these lines never run.
    const never = false as boolean;
    if (never) {
      // @ts-expect-error no such method in the Membership service
      c.call('Joinn', { addr: 'x' }).catch(() => undefined);
      // @ts-expect-error Join's body has no nodeId
      c.call('Join', { nodeId: 'x' }).catch(() => undefined);
      const d = new RpcClient('Dispatcher', addr, grpc.credentials.createInsecure());
      // @ts-expect-error Session is a stream, not a unary call
      d.call('Session', { description: {} as never, addr: '' }).catch(() => undefined);
    }
  });
});
