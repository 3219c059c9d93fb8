import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { run } from '../../src/util/run.js';

const APPLETS = ['sh', 'sleep', 'echo', 'cat', 'ls', 'true', 'false', 'env', 'hostname', 'id', 'ip', 'ps', 'kill', 'wc', 'head', 'tail', 'printf', 'trap', 'seq', 'date', 'grep', 'mkdir', 'touch', 'rm', 'wget', 'httpd', 'nc', 'ifconfig', 'ping', 'nslookup', 'pwd', 'test', 'uname', 'whoami'];

/** A rootfs tarball with Debian's static busybox and its applets, for `docker import`. Returns the tar path. */
export async function busyboxRootfsTar(dir: string): Promise<string> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-bb-'));
  try {
    for (const d of ['bin', 'etc', 'tmp', 'proc', 'sys', 'dev', 'root']) fs.mkdirSync(path.join(root, d));
    fs.copyFileSync('/bin/busybox', path.join(root, 'bin/busybox'));
    fs.chmodSync(path.join(root, 'bin/busybox'), 0o755);
    for (const a of APPLETS) fs.symlinkSync('busybox', path.join(root, 'bin', a));
    fs.writeFileSync(path.join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n');
    fs.writeFileSync(path.join(root, 'etc/group'), 'root:x:0:\nnogroup:x:65534:\n');
    const tar = path.join(dir, 'busybox-rootfs.tar');
    await run('tar', ['-C', root, '-cf', tar, '.']);
    return tar;
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}

/** Imports the busybox rootfs into a daemon as `name` with CMD sh. */
export async function importBusybox(docker: (args: string[], opts?: { input?: Buffer }) => Promise<unknown>, dir: string, name: string): Promise<void> {
  const tar = await busyboxRootfsTar(dir);
  await docker(['import', '-c', 'CMD ["sh"]', '-', name], { input: fs.readFileSync(tar) });
}
