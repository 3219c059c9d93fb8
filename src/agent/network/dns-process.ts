import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { DnsServer, type DnsServerOptions } from '../../net/dns-server.js';
import type { DnsZone } from '../../net/dns-zone.js';
import type { NetnsPath } from './kernel.js';
import { createLogger, type Logger } from '../../util/log.js';

/** Where a resolver runs and what it knows: in-process, or a child process in another namespace. */
export interface Resolver {
  setZone(zone: DnsZone): void;
  stop(): Promise<void>;
}

type ChildMessage = { ready: true } | { error: string };

/**
 * A Node process cannot open a socket in another network namespace, so a resolver for a node
 * namespace other than the daemon's own runs as a child entered into it, fed zones over IPC.
 */
export async function startResolver(ns: NetnsPath, options: DnsServerOptions, log?: Logger): Promise<Resolver> {
  if (ns === undefined) {
    const server = new DnsServer(options, log);
    await server.start();
    return { setZone: (z) => server.setZone(z), stop: () => server.stop() };
  }
  const script = fileURLToPath(import.meta.url);
  const child: ChildProcess = spawn(
    'nsenter',
    [`--net=${ns}`, '--', process.execPath, script, JSON.stringify(options), log?.level ?? 'info'],
    {
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    },
  );
  await new Promise<void>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`resolver process exited with ${code}`)));
    child.once('message', (m: ChildMessage) => ('ready' in m ? resolve() : reject(new Error(`resolver: ${m.error}`))));
  });
  child.removeAllListeners('exit');
  return {
    setZone: (z) => {
      if (child.connected) child.send(z);
    },
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

async function childMain(): Promise<void> {
  // Its log goes to the daemon's stderr (inherited), at the daemon's level.
  const server = new DnsServer(
    JSON.parse(process.argv[2]) as DnsServerOptions,
    createLogger('shoald-dns', process.argv[3]),
  );
  try {
    await server.start();
  } catch (e) {
    process.send?.({ error: (e as Error).message });
    process.exit(1);
  }
  process.on('message', (zone: DnsZone) => server.setZone(zone));
  process.on('disconnect', () => process.exit(0));
  process.on('SIGTERM', () => process.exit(0));
  process.send?.({ ready: true });
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  childMain().catch((err: unknown) => {
    process.stderr.write(`shoald-dns failed: ${String(err)}\n`);
    process.exit(1);
  });
}
