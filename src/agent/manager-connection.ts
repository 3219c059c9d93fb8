import * as grpc from '@grpc/grpc-js';
import { ExponentialBackoff, type IBackoff } from 'cockatiel';
import { clientCredentials, RpcClient, type RequestOf, type ResponseOf, type UnaryMethodName } from '../cluster/rpc.js';

/** What the node knows of its swarm for talking to managers (undefined: not in a swarm). */
export interface AgentTarget {
  nodeId: string;
  /** Current TLS material (re-read per connection, so renewed certificates are picked up). */
  tls(): { ca: Buffer; cert: Buffer; key: Buffer };
  /** Manager addresses (host:2377), this node's own first when it is a manager. */
  managers(): string[];
}

/** The one reconnect policy: 100 ms doubling to 8 s, with jitter (cockatiel's decorrelated backoff). */
export const reconnectBackoff = new ExponentialBackoff({ initialDelay: 100, maxDelay: 8000 });

/**
 * The agent's way to the managers' dispatcher: picks a manager from the list the session
 * keeps current, moves to the next when one fails, and makes the typed client with the
 * node's current certificate. The network view and standalone attachments use it.
 */
export class ManagerConnection {
  private index = 0;
  private delay?: IBackoff<unknown>;

  constructor(private readonly target: () => AgentTarget | undefined) {}

  /** The manager to use now (undefined: not in a swarm, or no manager known). */
  pick(): { target: AgentTarget; addr: string } | undefined {
    const target = this.target();
    const list = target?.managers() ?? [];
    if (!target || !list.length) return undefined;
    return { target, addr: list[this.index % list.length] };
  }

  /** The manager picked failed or went away: the next one, after the policy's delay. */
  async failed(): Promise<void> {
    this.index++;
    this.delay = (this.delay ?? reconnectBackoff).next(undefined);
    await sleep(this.delay.duration);
  }

  /** A connection worked: the next failure waits the shortest delay again. */
  succeeded(): void {
    this.delay = undefined;
  }

  /** A dispatcher client to `addr` with the node's current certificate. */
  client(target: AgentTarget, addr: string, options?: grpc.ChannelOptions): RpcClient<'Dispatcher'> {
    const tls = target.tls();
    return new RpcClient('Dispatcher', addr, clientCredentials(tls.ca, tls.cert, tls.key), options);
  }

  /** A unary dispatcher call on the first manager that answers (UNAVAILABLE: the next one). */
  async call<M extends UnaryMethodName<'Dispatcher'>>(
    method: M,
    req: RequestOf<'Dispatcher', M>,
    deadlineMs?: number,
  ): Promise<ResponseOf<'Dispatcher', M>> {
    const target = this.target();
    if (!target)
      throw Object.assign(new Error('This node is not a swarm manager.'), {
        code: grpc.status.UNAVAILABLE,
        details: 'node is not part of a swarm',
      });
    let last: unknown;
    for (const addr of target.managers()) {
      const client = this.client(target, addr);
      try {
        return await client.call(method, req, deadlineMs);
      } catch (e) {
        last = e;
        if ((e as grpc.ServiceError).code !== grpc.status.UNAVAILABLE) throw e;
      } finally {
        client.close();
      }
    }
    throw last ?? new Error('no manager reachable');
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
