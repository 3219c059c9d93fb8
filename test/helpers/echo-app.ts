import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { run } from '../../src/util/run.js';

/**
 * echo-app: an image that answers with the address its connection came from, as the task saw
 * it: `<peer address> <peer port> <hostname>` on TCP 8080 (then echoes whatever the client
 * sends, for long-lived connections) and on UDP 9090 (one answer per datagram). Debian's
 * busybox-static gives the shell; its nc can neither do UDP nor tell the peer, so the server is
 * the host's socat (with the shared libraries it links) that sets SOCAT_PEERADDR/SOCAT_PEERPORT.
 */
export const ECHO_TCP_PORT = 8080;
export const ECHO_UDP_PORT = 9090;

const APPLETS = ['sh', 'echo', 'cat', 'hostname', 'sleep', 'true'];
// socat splits its addresses at ':' and ',': the commands use neither.
const SERVE = [
  `socat TCP4-LISTEN:${ECHO_TCP_PORT},fork,reuseaddr SYSTEM:'echo $SOCAT_PEERADDR $SOCAT_PEERPORT $(hostname); exec cat' &`,
  `exec socat UDP4-RECVFROM:${ECHO_UDP_PORT},fork SYSTEM:'echo $SOCAT_PEERADDR $SOCAT_PEERPORT $(hostname)'`,
].join('\n');

/** The libraries a binary loads, from ldd (the loader included). */
async function sharedLibraries(bin: string): Promise<string[]> {
  const out = (await run('ldd', [bin])).stdout;
  return [...out.matchAll(/(\/\S+\.so[.\d]*)/g)].map((m) => m[1]);
}

/** A rootfs tarball of echo-app for `docker import`; returns its path. */
export async function echoAppRootfsTar(dir: string): Promise<string> {
  const socat = (await run('sh', ['-c', 'command -v socat'])).stdout.trim();
  if (!socat) throw new Error('echo-app needs socat on the host (scripts/setup installs it)');
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-echo-'));
  try {
    for (const d of ['bin', 'etc', 'tmp', 'proc', 'sys', 'dev']) fs.mkdirSync(path.join(root, d));
    fs.copyFileSync('/bin/busybox', path.join(root, 'bin/busybox'));
    fs.chmodSync(path.join(root, 'bin/busybox'), 0o755);
    for (const a of APPLETS) fs.symlinkSync('busybox', path.join(root, 'bin', a));
    fs.copyFileSync(socat, path.join(root, 'bin/socat'));
    fs.chmodSync(path.join(root, 'bin/socat'), 0o755);
    for (const lib of await sharedLibraries(socat)) {
      const to = path.join(root, lib);
      fs.mkdirSync(path.dirname(to), { recursive: true });
      fs.copyFileSync(fs.realpathSync(lib), to);
    }
    fs.writeFileSync(path.join(root, 'serve'), `#!/bin/sh\n${SERVE}\n`, { mode: 0o755 });
    fs.writeFileSync(path.join(root, 'etc/passwd'), 'root:x:0:0:root:/:/bin/sh\n');
    const tar = path.join(dir, 'echo-app-rootfs.tar');
    await run('tar', ['-C', root, '-cf', tar, '.']);
    return tar;
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}

/** Imports echo-app as `name` through a daemon (`docker import` with the server as CMD). */
export async function importEchoApp(
  docker: (args: string[], opts?: { input?: Buffer }) => Promise<unknown>,
  tar: string,
  name: string,
): Promise<void> {
  await docker(['import', '-c', 'CMD ["/serve"]', '-c', `EXPOSE ${ECHO_TCP_PORT}/tcp`, '-', name], {
    input: fs.readFileSync(tar),
  });
}

/** One TCP request from a namespace: the first line the task sent (its view of our address), or '' on failure. */
export async function tcpAsk(ns: string, ip: string, port: number, timeoutS = 3): Promise<string> {
  return (await tcpTry(ns, ip, port, timeoutS)).line;
}

/** tcpAsk with socat's complaint when it failed. */
export async function tcpTry(
  ns: string,
  ip: string,
  port: number,
  timeoutS = 3,
): Promise<{ line: string; error: string }> {
  const r = await run(
    'ip',
    [
      'netns',
      'exec',
      ns,
      'socat',
      '-t',
      String(timeoutS),
      '-T',
      String(timeoutS),
      '-',
      `TCP4:${ip}:${port},connect-timeout=${timeoutS}`,
    ],
    { input: '', allowFail: true },
  );
  const line = r.code === 0 ? r.stdout.split('\n')[0].trim() : '';
  return { line, error: line ? '' : `exit ${r.code}: ${r.stderr.trim()}` };
}

/** One UDP datagram from a namespace: the task's answer, or '' when none came. */
export async function udpAsk(ns: string, ip: string, port: number, timeoutS = 2): Promise<string> {
  const r = await run(
    'ip',
    ['netns', 'exec', ns, 'socat', '-t', String(timeoutS), '-T', String(timeoutS), '-', `UDP4:${ip}:${port}`],
    { input: 'ping\n', allowFail: true },
  );
  return r.code === 0 ? r.stdout.split('\n')[0].trim() : '';
}
