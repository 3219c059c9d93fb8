import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { run } from '../../src/util/run.js';

/**
 * The images docker-py's integration suite uses (tests/helpers.py, tests/integration/base.py),
 * made offline from Debian's busybox-static: every applet, a `postgres` user and /var/opt for
 * the exec tests. Each name is imported on its own so the four have distinct IDs, as pulled
 * images do (a test removing one by ID must not hit "referenced in multiple repositories").
 */
export const SUITE_IMAGES: ReadonlyArray<{ ref: string; cmd: string }> = [
  { ref: 'busybox:latest', cmd: 'sh' },
  { ref: 'busybox:buildroot-2014.02', cmd: 'sh' },
  { ref: 'alpine:3.10', cmd: '/bin/sh' },
  { ref: 'alpine:latest', cmd: '/bin/sh' },
];

async function busyboxApplets(): Promise<string[]> {
  const out = (await run('/bin/busybox', ['--list'])).stdout;
  return out
    .split('\n')
    .map((s) => s.trim())
    .filter((s) => s && s !== 'busybox' && !s.includes('/'));
}

/** A rootfs tarball: /bin/busybox with every applet linked beside it, users, groups, /var/opt. */
export async function suiteRootfsTar(dir: string): Promise<string> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-compat-rootfs-'));
  try {
    for (const d of [
      'bin',
      'sbin',
      'usr/bin',
      'usr/sbin',
      'etc',
      'tmp',
      'proc',
      'sys',
      'dev',
      'root',
      'home',
      'var/opt',
      'var/tmp',
      'var/lib/postgresql',
    ]) {
      fs.mkdirSync(path.join(root, d), { recursive: true });
    }
    fs.chmodSync(path.join(root, 'tmp'), 0o1777);
    fs.copyFileSync('/bin/busybox', path.join(root, 'bin/busybox'));
    fs.chmodSync(path.join(root, 'bin/busybox'), 0o755);
    for (const a of await busyboxApplets()) fs.symlinkSync('busybox', path.join(root, 'bin', a));
    fs.writeFileSync(
      path.join(root, 'etc/passwd'),
      [
        'root:x:0:0:root:/root:/bin/sh',
        'postgres:x:70:70:postgres:/var/lib/postgresql:/bin/sh',
        'nobody:x:65534:65534:nobody:/:/bin/sh',
        '',
      ].join('\n'),
    );
    fs.writeFileSync(path.join(root, 'etc/group'), 'root:x:0:\npostgres:x:70:\nnogroup:x:65534:\n');
    const tar = path.join(dir, 'compat-rootfs.tar');
    await run('tar', ['--numeric-owner', '-C', root, '-cf', tar, '.']);
    return tar;
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}

/** Imports the rootfs under every name the suite expects. */
export async function importSuiteImages(
  docker: (args: string[], opts?: { input?: Buffer }) => Promise<unknown>,
  dir: string,
): Promise<void> {
  const tar = fs.readFileSync(await suiteRootfsTar(dir));
  for (const { ref, cmd } of SUITE_IMAGES) {
    await docker(['import', '-c', `CMD ["${cmd}"]`, '-', ref], { input: tar });
  }
}
