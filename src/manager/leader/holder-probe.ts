import net from 'node:net';

/** Connection errors that prove nothing listens at the address (not a slow or lost packet). */
const GONE = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH']);

/**
 * True when a manager's cluster port (`host:port`) certainly has no one behind it: the
 * connection is refused or the host is unreachable. A connection that merely takes long (a
 * busy machine, a full accept queue, a partition) is not proof: that leader's lease decides.
 */
export function managerPortGone(addr: string, timeoutMs = 1000): Promise<boolean> {
  const i = addr.lastIndexOf(':');
  const host = addr.slice(0, i).replace(/^\[|\]$/g, '');
  const port = Number(addr.slice(i + 1));
  if (i < 0 || !host || !Number.isInteger(port)) return Promise.resolve(false);
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    const done = (gone: boolean) => {
      clearTimeout(t);
      s.destroy();
      resolve(gone);
    };
    const t = setTimeout(() => done(false), timeoutMs);
    s.once('connect', () => done(false));
    s.once('error', (e: NodeJS.ErrnoException) => done(GONE.has(e.code ?? '')));
  });
}
