import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { run } from '../../src/util/run.js';

const APPLETS = [
  'sh',
  'sleep',
  'echo',
  'cat',
  'ls',
  'true',
  'false',
  'env',
  'hostname',
  'id',
  'ip',
  'ps',
  'kill',
  'wc',
  'head',
  'tail',
  'printf',
  'trap',
  'seq',
  'date',
  'grep',
  'mkdir',
  'touch',
  'rm',
  'wget',
  'httpd',
  'nc',
  'ifconfig',
  'ping',
  'nslookup',
  'pwd',
  'test',
  'uname',
  'whoami',
];

/** A rootfs tarball with Debian's static busybox and its applets, for `docker import`. Returns the tar path. */
export async function busyboxRootfsTar(dir: string, opts: { hostBinaries?: string[] } = {}): Promise<string> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-bb-'));
  try {
    // Dynamic host programs (getent, …) with the libraries ldd names, at the same paths.
    for (const bin of opts.hostBinaries ?? []) {
      const libs = (await run('ldd', [bin])).stdout
        .split('\n')
        .map((l) => /(\/\S+) \(0x/.exec(l)?.[1])
        .filter((l): l is string => !!l);
      for (const f of [bin, ...libs]) {
        fs.mkdirSync(path.join(root, path.dirname(f)), { recursive: true });
        fs.copyFileSync(fs.realpathSync(f), path.join(root, f));
        fs.chmodSync(path.join(root, f), 0o755);
      }
    }
    // glibc's lookups: /etc/hosts first (without this file DNS is asked first).
    if (opts.hostBinaries?.length) {
      fs.mkdirSync(path.join(root, 'etc'), { recursive: true });
      fs.writeFileSync(path.join(root, 'etc/nsswitch.conf'), 'hosts: files dns\n');
    }
    for (const d of ['bin', 'etc', 'tmp', 'proc', 'sys', 'dev', 'root'])
      fs.mkdirSync(path.join(root, d), { recursive: true });
    fs.copyFileSync('/bin/busybox', path.join(root, 'bin/busybox'));
    fs.chmodSync(path.join(root, 'bin/busybox'), 0o755);
    for (const a of APPLETS) fs.symlinkSync('busybox', path.join(root, 'bin', a));
    fs.writeFileSync(
      path.join(root, 'etc/passwd'),
      'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n',
    );
    fs.writeFileSync(path.join(root, 'etc/group'), 'root:x:0:\nnogroup:x:65534:\n');
    const tar = path.join(dir, 'busybox-rootfs.tar');
    await run('tar', ['-C', root, '-cf', tar, '.']);
    return tar;
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}

/** Imports the busybox rootfs into a daemon as `name` with CMD sh. */
export async function importBusybox(
  docker: (args: string[], opts?: { input?: Buffer }) => Promise<unknown>,
  dir: string,
  name: string,
  opts: { hostBinaries?: string[] } = {},
): Promise<void> {
  const tar = await busyboxRootfsTar(dir, opts);
  await docker(['import', '-c', 'CMD ["sh"]', '-', name], { input: fs.readFileSync(tar) });
}
