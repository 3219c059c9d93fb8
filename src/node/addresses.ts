import net from 'node:net';
import os from 'node:os';
import * as grpc from '@grpc/grpc-js';
import { ApiError, badRequest, rpcText } from '../util/errors.js';
import { chooseSystemAddr, listSystemLinks } from './system-addr.js';
import { SWARM_PORT } from '../cluster/rpc.js';

/** Addresses a node listens on and advertises, and gRPC failures in dockerd's words. */
export function parseListenAddr(addr: string | undefined): { host: string; port: number } {
  const a = addr || `0.0.0.0:${SWARM_PORT}`;
  const m = /^(.*?)(?::(\d+))?$/.exec(a)!;
  return { host: m[1] || '0.0.0.0', port: m[2] ? Number(m[2]) : SWARM_PORT };
}

/** --advertise-addr: an IP, IP:port or interface name; else the listen IP; else the system address dockerd would pick. */
export async function resolveAdvertiseAddr(
  given: string | undefined,
  listenHost: string,
): Promise<{ host: string; port: number }> {
  const ifaces = os.networkInterfaces();
  if (given) {
    const m = /^(.*?)(?::(\d+))?$/.exec(given)!;
    let host = m[1];
    const port = m[2] ? Number(m[2]) : SWARM_PORT;
    if (!net.isIP(host)) {
      const addrs = (ifaces[host] ?? []).filter((a) => a.family === 'IPv4');
      if (!ifaces[host])
        throw badRequest(
          `advertise address must be a non-zero IP address or network interface (with optional port number)`,
        );
      if (addrs.length === 0) throw badRequest(`interface ${host} has no usable IPv4 address`);
      host = addrs[0].address;
    }
    return { host, port };
  }
  if (listenHost && listenHost !== '0.0.0.0' && net.isIP(listenHost)) return { host: listenHost, port: SWARM_PORT };
  return { host: chooseSystemAddr(await listSystemLinks()), port: SWARM_PORT };
}

/**
 * --data-path-addr: an IP (not 0.0.0.0, no port) or the name of an interface with an address,
 * checked as dockerd's resolveDataPathAddr does; undefined when not given.
 */
export function resolveDataPathAddr(given: string | undefined): string | undefined {
  if (!given) return undefined;
  const bad = () =>
    badRequest('data path address must be a non-zero IP address or network interface (without a port number)');
  if (net.isIP(given)) {
    if (given === '0.0.0.0' || given === '::') throw bad();
    return given;
  }
  const iface = os.networkInterfaces()[given];
  if (!iface) throw bad();
  const addr =
    iface.find((a) => a.family === 'IPv4' && !a.internal) ??
    iface.find((a) => a.family === 'IPv6' && !a.internal && !a.address.startsWith('fe80'));
  if (!addr) throw badRequest(`interface ${given} has no usable IPv4 or IPv6 address`);
  return addr.address;
}

/** The local address the kernel would use to reach `remote` (how dockerd picks a joiner's address). */
export function localAddrTowards(remote: string): Promise<string> {
  const i = remote.lastIndexOf(':');
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: remote.slice(0, i), port: Number(remote.slice(i + 1)), timeout: 5000 });
    s.once('connect', () => {
      resolve(s.localAddress!.replace(/^::ffff:/, ''));
      s.destroy();
    });
    s.once('timeout', () => {
      s.destroy();
      reject(
        rpcError({
          code: grpc.status.UNAVAILABLE,
          details: `connection error: desc = "transport: Error while dialing: dial tcp ${remote}: i/o timeout"`,
        }),
      );
    });
    s.once('error', (e) =>
      reject(
        rpcError({
          code: grpc.status.UNAVAILABLE,
          details: `connection error: desc = "transport: Error while dialing: dial tcp ${remote}: ${(e as NodeJS.ErrnoException).code === 'ECONNREFUSED' ? 'connect: connection refused' : e.message}"`,
        }),
      ),
    );
  });
}

const CODE_NAMES: Record<number, string> = Object.fromEntries(
  Object.entries(grpc.status)
    .filter(([, v]) => typeof v === 'number')
    .map(([k, v]) => [
      v as number,
      k
        .split('_')
        .map((w) => w[0] + w.slice(1).toLowerCase())
        .join(''),
    ]),
);

/** A failed gRPC call, in the words dockerd relays ("rpc error: code = X desc = …"). */
export function rpcError(e: unknown): ApiError {
  if (e instanceof ApiError) return e;
  const err = e as { code?: number; details?: string; message?: string };
  const code = err.code ?? grpc.status.UNKNOWN;
  const status = code === grpc.status.INVALID_ARGUMENT ? 400 : code === grpc.status.UNAVAILABLE ? 503 : 500;
  const name =
    CODE_NAMES[code] === 'Invalidargument'
      ? 'InvalidArgument'
      : CODE_NAMES[code] === 'Permissiondenied'
        ? 'PermissionDenied'
        : CODE_NAMES[code];
  return new ApiError(status, rpcText(name, err.details ?? err.message ?? ''));
}
