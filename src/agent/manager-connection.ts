import * as grpc from '@grpc/grpc-js';
import { ExponentialBackoff, type IBackoff } from 'cockatiel';
import { setTimeout as delay } from 'node:timers/promises';
import { clientCredentials, RpcClient, type RequestOf, type ResponseOf, type UnaryMethodName } from '../cluster/rpc.js';
import type { ManagerEndpoints } from './link.js';

/** The one reconnect policy: 100 ms doubling to 8 s, with jitter (cockatiel's decorrelated backoff). */
export const reconnectBackoff = new ExponentialBackoff({ initialDelay: 100, maxDelay: 8000 });

/**
 * The agent's way to the managers' dispatcher: picks a manager from the list the session
 * keeps current, moves to the next when one fails (after the one reconnect policy's delay),
 * and makes the typed client with the node's current certificate. The session, the network
 * view and tunnel reports, standalone attachments and the log streams (one per manager, each
 * its own connection over a one-address list) all reach managers through it.
 */
export class ManagerConnection {
  private index = 0;
  private delay?: IBackoff<unknown>;

  constructor(private readonly target: () => ManagerEndpoints | undefined) {}

  /** The manager to use now (undefined: not in a swarm, or no manager known). */
  pick(): { target: ManagerEndpoints; addr: string } | undefined {
    const target = this.target();
    const list = target?.managers() ?? [];
    if (!target || !list.length) return undefined;
    return { target, addr: list[this.index % list.length] };
  }

  /**
   * The manager picked failed or went away: the next one (`sameManager`: this one again), after
   * the policy's delay; an abort of `signal` (stopping) ends the wait early.
   */
  async failed(opts: { sameManager?: boolean; signal?: AbortSignal } = {}): Promise<void> {
    if (!opts.sameManager) this.index++;
    this.delay = (this.delay ?? reconnectBackoff).next(undefined);
    await delay(this.delay.duration, undefined, { signal: opts.signal }).catch(() => undefined);
  }

  /** A connection worked: the next failure waits the shortest delay again. */
  succeeded(): void {
    this.delay = undefined;
  }

  /** A dispatcher client to `addr` with the node's current certificate. */
  client(target: ManagerEndpoints, addr: string, options?: grpc.ChannelOptions): RpcClient<'Dispatcher'> {
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
