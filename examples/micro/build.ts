/**
 * micro, the seed's demo app, as an image: busybox httpd on port 8000 whose page at `/` (a CGI
 * script) shows the container's hostname and IPv4 addresses. Built from Debian busybox-static's
 * /bin/busybox with tar-stream, byte-for-byte reproducible (fixed mtimes and owners), so the
 * same build always gives the same layer digest and image ID.
 *
 *   node dist/examples/micro/build.js [--format save|rootfs] [--tag REF] [-o FILE]
 *
 * `save` (default) is a `docker save` archive for `docker load`; `rootfs` is a root filesystem
 * tarball for `docker import` with MICRO_CHANGES.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import tar from 'tar-stream';

export const MICRO_PORT = 8000;
export const MICRO_TAG = 'micro:1.0.0';
export const BUSYBOX = '/bin/busybox';

/** How the app starts; the same in the image config and in the `docker import -c` lines. */
export const MICRO_CMD = ['/bin/httpd', '-f', '-p', String(MICRO_PORT), '-h', '/www'];
export const MICRO_ENV = ['PATH=/usr/sbin:/usr/bin:/sbin:/bin'];
/** `docker import -c …` lines that turn the rootfs tarball into the same runnable app. */
export const MICRO_CHANGES = [`CMD ${JSON.stringify(MICRO_CMD)}`, `ENV ${MICRO_ENV[0]}`, `EXPOSE ${MICRO_PORT}/tcp`];

/** Fixed so builds are reproducible (the layer digest depends on every header byte). */
const EPOCH = new Date('2024-01-01T00:00:00Z');

/** Applets the page and a shell inside the container use; each is a symlink to busybox. */
const APPLETS = [
  'sh',
  'httpd',
  'hostname',
  'ip',
  'awk',
  'cat',
  'echo',
  'ls',
  'ps',
  'sleep',
  'wget',
  'env',
  'grep',
  'sed',
  'head',
  'kill',
  'true',
  'false',
  'id',
  'nc',
  'ping',
  'top',
  'mkdir',
  'rm',
  'uname',
];

/**
 * The CGI page. busybox httpd runs cgi-bin/index.cgi for `/` when there is no index.html.
 * Addresses come from `ip -4 -o addr` (netlink, no /proc needed); loopback is left out.
 */
const INDEX_CGI = `#!/bin/sh
host=$(hostname)
ips=$(ip -4 -o addr show 2>/dev/null | awk '$4 !~ /^127\\./ { split($4, a, "/"); printf "%s ", a[1] }')
ips=\${ips% }
printf 'Content-Type: text/html; charset=utf-8\\r\\n\\r\\n'
cat <<EOF
<!DOCTYPE html>
<html>
<head><title>micro</title></head>
<body>
<h1>micro</h1>
<p>Hostname: <b id="hostname">$host</b></p>
<p>IP: <b id="ip">$ips</b></p>
</body>
</html>
EOF
`;

type Entry =
  | { type: 'directory'; name: string; mode: number }
  | { type: 'file'; name: string; mode: number; data: Buffer }
  | { type: 'symlink'; name: string; linkname: string };

function rootfsEntries(busybox: Buffer): Entry[] {
  const dirs = [
    'bin',
    'dev',
    'etc',
    'proc',
    'sys',
    'tmp',
    'www',
    'www/cgi-bin',
    'usr',
    'usr/bin',
    'usr/sbin',
    'sbin',
    'root',
    'var',
    'var/run',
  ];
  const entries: Entry[] = dirs.map((d) => ({ type: 'directory', name: `${d}/`, mode: d === 'tmp' ? 0o1777 : 0o755 }));
  entries.push({ type: 'file', name: 'bin/busybox', mode: 0o755, data: busybox });
  for (const a of APPLETS) entries.push({ type: 'symlink', name: `bin/${a}`, linkname: 'busybox' });
  entries.push(
    {
      type: 'file',
      name: 'etc/passwd',
      mode: 0o644,
      data: Buffer.from('root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n'),
    },
    { type: 'file', name: 'etc/group', mode: 0o644, data: Buffer.from('root:x:0:\nnogroup:x:65534:\n') },
    { type: 'file', name: 'www/cgi-bin/index.cgi', mode: 0o755, data: Buffer.from(INDEX_CGI) },
  );
  return entries;
}

/** Packs entries into one tar archive in memory (the image is ~2 MB). */
async function pack(entries: Entry[]): Promise<Buffer> {
  const p = tar.pack();
  const chunks: Buffer[] = [];
  p.on('data', (c: unknown) => chunks.push(c as Buffer));
  const ended = new Promise<void>((resolve, reject) => {
    p.on('end', resolve);
    p.on('error', reject);
  });
  const common = { uid: 0, gid: 0, uname: 'root', gname: 'root', mtime: EPOCH };
  for (const e of entries) {
    await new Promise<void>((resolve, reject) => {
      const cb = (err?: Error | null) => (err ? reject(err) : resolve());
      if (e.type === 'file') p.entry({ ...common, name: e.name, mode: e.mode, size: e.data.length }, e.data, cb);
      else if (e.type === 'directory') p.entry({ ...common, name: e.name, type: 'directory', mode: e.mode }, cb);
      else p.entry({ ...common, name: e.name, type: 'symlink', linkname: e.linkname, mode: 0o777 }, cb);
    });
  }
  p.finalize();
  await ended;
  return Buffer.concat(chunks);
}

const sha256hex = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

/** The app's root filesystem as a tarball: `docker import -c … - micro:1.0.0` takes it with MICRO_CHANGES. */
export async function buildMicroRootfs(busyboxPath = BUSYBOX): Promise<Buffer> {
  return pack(rootfsEntries(fs.readFileSync(busyboxPath)));
}

export interface MicroImage {
  /** The `docker save` archive (manifest.json, config, one layer.tar). */
  tarball: Buffer;
  /** `sha256:…` of the config: the image ID `docker images` will show. */
  id: string;
  /** `sha256:…` of the layer tar: its diff ID. */
  diffId: string;
}

/** The app as a `docker save` archive that `docker load` takes, tagged `tag` (default micro:1.0.0). */
export async function buildMicroImage(opts: { tag?: string; busyboxPath?: string } = {}): Promise<MicroImage> {
  const tag = opts.tag ?? MICRO_TAG;
  const layer = await buildMicroRootfs(opts.busyboxPath);
  const diffHex = sha256hex(layer);
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      created: EPOCH.toISOString(),
      config: {
        Env: MICRO_ENV,
        Cmd: MICRO_CMD,
        ExposedPorts: { [`${MICRO_PORT}/tcp`]: {} },
        WorkingDir: '/',
        Labels: { 'org.opencontainers.image.title': 'micro' },
      },
      rootfs: { type: 'layers', diff_ids: [`sha256:${diffHex}`] },
      history: [
        { created: EPOCH.toISOString(), created_by: 'examples/micro/build.ts: busybox-static + httpd CGI page' },
      ],
    }),
  );
  const configHex = sha256hex(config);
  const manifest = Buffer.from(
    JSON.stringify([{ Config: `${configHex}.json`, RepoTags: [tag], Layers: [`${diffHex}/layer.tar`] }]),
  );
  const tarball = await pack([
    { type: 'directory', name: `${diffHex}/`, mode: 0o755 },
    { type: 'file', name: `${diffHex}/layer.tar`, mode: 0o644, data: layer },
    { type: 'file', name: `${configHex}.json`, mode: 0o644, data: config },
    { type: 'file', name: 'manifest.json', mode: 0o644, data: manifest },
  ]);
  return { tarball, id: `sha256:${configHex}`, diffId: `sha256:${diffHex}` };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      format: { type: 'string', default: 'save' },
      tag: { type: 'string', default: MICRO_TAG },
      output: { type: 'string', short: 'o' },
      busybox: { type: 'string', default: BUSYBOX },
    },
  });
  let out: Buffer;
  if (values.format === 'save') out = (await buildMicroImage({ tag: values.tag, busyboxPath: values.busybox })).tarball;
  else if (values.format === 'rootfs') out = await buildMicroRootfs(values.busybox);
  else throw new Error(`--format must be save or rootfs, not ${values.format}`);
  if (values.output) fs.writeFileSync(values.output, out);
  else if (process.stdout.isTTY) throw new Error('refusing to write a tarball to a terminal; use -o FILE or a pipe');
  else await new Promise<void>((resolve, reject) => process.stdout.write(out, (e) => (e ? reject(e) : resolve())));
}

if (process.argv[1] && fs.realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((e: Error) => {
    process.stderr.write(`build: ${e.message}\n`);
    process.exit(1);
  });
}
