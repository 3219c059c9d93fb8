/**
 * A container's files seen from the host: paths resolved inside its root (`docker cp`), the
 * root as a tar (`docker export`), and what its overlay upper dir changed against the image
 * (`docker diff`, and the layer `docker commit` makes).
 */
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { PassThrough, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { badRequest, notFound } from '../../util/errors.js';
import { run } from '../../util/run.js';
import { OPAQUE_MARKER, WHITEOUT_PREFIX } from '../images/layers.js';

/** Docker's `containerFileNotFound`. */
export const fileNotFound = (p: string, container: string) =>
  notFound(`Could not find the file ${p} in container ${container}`);

/**
 * `p` (absolute inside the container) resolved to a host path under `root`, following symlinks
 * as the container would see them but never out of `root`. The last component is followed only
 * when `followLast` (a path ending in `/` or `/.`).
 */
export function resolveInRoot(root: string, p: string, followLast = false): string {
  const parts = p.split('/').filter((s) => s !== '' && s !== '.');
  const done: string[] = [];
  let hops = 0;
  while (parts.length) {
    const part = parts.shift()!;
    if (part === '..') {
      done.pop();
      continue;
    }
    const host = path.join(root, ...done, part);
    let st: fs.Stats | undefined;
    try {
      st = fs.lstatSync(host);
    } catch {
      /* missing: the caller's stat says so */
    }
    if (st?.isSymbolicLink() && (parts.length > 0 || followLast)) {
      if (++hops > 255) throw badRequest(`too many links in ${p}`);
      const target = fs.readlinkSync(host);
      if (target.startsWith('/')) done.length = 0;
      parts.unshift(...target.split('/').filter((s) => s !== '' && s !== '.'));
      continue;
    }
    done.push(part);
  }
  return path.join(root, ...done);
}

/** What `X-Docker-Container-Path-Stat` carries: Go's os.FileMode bits in `mode`. */
export interface PathStat {
  name: string;
  size: number;
  mode: number;
  mtime: string;
  linkTarget: string;
}

function goFileMode(st: fs.Stats): number {
  let m = st.mode & 0o777;
  if (st.isDirectory()) m |= 2 ** 31;
  else if (st.isSymbolicLink()) m |= 2 ** 27;
  else if (st.isFIFO()) m |= 2 ** 25;
  else if (st.isSocket()) m |= 2 ** 24;
  else if (st.isCharacterDevice()) m |= 2 ** 26 + 2 ** 21;
  else if (st.isBlockDevice()) m |= 2 ** 26;
  if (st.mode & 0o4000) m |= 2 ** 23;
  if (st.mode & 0o2000) m |= 2 ** 22;
  if (st.mode & 0o1000) m |= 2 ** 20;
  // Sums, not `|`: JavaScript's bit operators are 32-bit signed and bit 31 would turn negative.
  return m >= 0 ? m : m + 2 ** 32;
}

/** The container path `p` under `root`: its host path and stat; 404 when missing. */
export function statInRoot(root: string, p: string, container: string): { host: string; stat: PathStat } {
  const followLast = p.endsWith('/') || p.endsWith('/.');
  const host = resolveInRoot(root, p, followLast);
  let st: fs.Stats;
  try {
    st = fs.lstatSync(host);
  } catch {
    throw fileNotFound(p, container);
  }
  let linkTarget = '';
  if (st.isSymbolicLink()) {
    // Docker shows where the link leads inside the container.
    linkTarget = '/' + path.relative(root, resolveInRoot(root, p, true));
  }
  const base = path.posix.basename(p.replace(/\/+$/, '')) || '/';
  return { host, stat: { name: base, size: st.size, mode: goFileMode(st), mtime: st.mtime.toISOString(), linkTarget } };
}

/** A child `tar` writing an archive to its stdout; failures end the stream with an error. */
function tarOut(args: string[]): Readable {
  const child = spawn('tar', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const out = new PassThrough();
  let err = '';
  child.stderr.on('data', (b: Buffer) => (err += b.toString()));
  child.stdout.pipe(out, { end: false });
  child.on('close', (code) => {
    if (code === 0) out.end();
    else out.destroy(new Error(`tar: ${err.trim() || `exit ${code}`}`));
  });
  child.on('error', (e) => out.destroy(e));
  out.on('close', () => {
    if (child.exitCode === null) child.kill();
  });
  return out;
}

/** `GET /containers/{id}/archive`: the resolved path as a tar whose entries start with its base name. */
export function archiveHostPath(host: string, requested: string): Readable {
  const dir = path.dirname(host);
  // `dir/.` copies the directory's contents: the entries are then `./…`, as dockerd's rebase gives.
  const base = requested.endsWith('/.') ? path.join(path.basename(host), '.') : path.basename(host);
  return tarOut(['-c', '-f', '-', '-C', dir, '--numeric-owner', '--xattrs', base]);
}

/** `docker export`: the whole merged root, entries without a leading `./`. */
export function exportRoot(root: string): Readable {
  const top = fs.readdirSync(root).sort();
  if (top.length === 0) return tarOut(['-c', '-f', '-', '-C', root, '--numeric-owner', '--files-from', '/dev/null']);
  return tarOut(['-c', '-f', '-', '-C', root, '--numeric-owner', '--xattrs', '--', ...top]);
}

/**
 * `PUT /containers/{id}/archive`: extracts `body` into `dir` (a container path) under `root`.
 * Each member's path is resolved as the container sees it (resolveInRoot), so a symlink the
 * container planted never leads the write out of its root, which GNU tar on the host path would allow.
 */
export async function extractInto(
  root: string,
  dir: string,
  body: Readable,
  opts: { copyUidGid: boolean; noOverwriteDirNonDir: boolean },
): Promise<void> {
  const extract = tar.extract();
  const dirs: Array<{ host: string; mtime?: Date }> = [];
  const bad = (msg: string) => badRequest(`Error processing tar file(${msg})`);
  extract.on('entry', (h, stream, next) => {
    const done = (err?: unknown) => {
      if (err) {
        stream.resume();
        next(err as Error);
      } else next();
    };
    try {
      const name = h.name.replace(/^\.?\/+/, '');
      if (name === '' || name === '.') {
        stream.resume();
        stream.on('end', () => next());
        return;
      }
      const ctrPath = path.posix.join(dir, name);
      if (!ctrPath.startsWith(dir === '/' ? '/' : dir + '/') && ctrPath !== dir) throw bad(`invalid member ${h.name}`);
      const host = resolveInRoot(root, ctrPath);
      let existing: fs.Stats | undefined;
      try {
        existing = fs.lstatSync(host);
      } catch {
        /* new */
      }
      const isDir = h.type === 'directory';
      if (existing && opts.noOverwriteDirNonDir && existing.isDirectory() !== isDir) {
        throw bad(
          isDir
            ? `cannot overwrite non-directory "${ctrPath}" with directory "${ctrPath}"`
            : `cannot overwrite directory "${ctrPath}" with non-directory "${ctrPath}"`,
        );
      }
      if (existing && !(isDir && existing.isDirectory())) fs.rmSync(host, { recursive: true, force: true });
      fs.mkdirSync(path.dirname(host), { recursive: true });
      const mode = (h.mode ?? 0o644) & 0o7777;
      const owner = () => {
        const uid = opts.copyUidGid ? (h.uid ?? 0) : 0;
        const gid = opts.copyUidGid ? (h.gid ?? 0) : 0;
        fs.lchownSync(host, uid, gid);
      };
      switch (h.type) {
        case 'directory':
          if (!existing) fs.mkdirSync(host, { mode });
          fs.chmodSync(host, mode);
          owner();
          dirs.push({ host, mtime: h.mtime });
          break;
        case 'file':
        case 'contiguous-file': {
          const out = fs.createWriteStream(host, { mode, flags: 'wx' });
          stream.pipe(out);
          out.on('error', done);
          out.on('finish', () => {
            try {
              fs.chmodSync(host, mode);
              owner();
              if (h.mtime) fs.utimesSync(host, h.mtime, h.mtime);
              done();
            } catch (e) {
              done(e);
            }
          });
          return;
        }
        case 'symlink':
          fs.symlinkSync(h.linkname ?? '', host);
          owner();
          break;
        case 'link': {
          const target = resolveInRoot(root, path.posix.join(dir, (h.linkname ?? '').replace(/^\.?\/+/, '')));
          fs.linkSync(target, host);
          break;
        }
        default:
          // Devices and fifos are not copied into containers here; skipped as members dockerd would refuse unprivileged.
          break;
      }
      stream.resume();
      stream.on('end', () => next());
    } catch (e) {
      done(e);
    }
  });
  try {
    await pipeline(body, extract as unknown as NodeJS.WritableStream);
  } catch (e) {
    if (e instanceof Error && 'status' in e) throw e;
    throw bad((e as Error).message);
  }
  // Directory times last: writing into them changed them.
  for (const d of dirs.reverse()) if (d.mtime) fs.utimesSync(d.host, d.mtime, d.mtime);
}

/** Paths dockerd keeps in a container's init layer: never part of `docker diff` or a commit. */
const INIT_PATHS = new Set([
  '/.dockerenv',
  '/etc/hosts',
  '/etc/hostname',
  '/etc/resolv.conf',
  '/etc/mtab',
  '/dev/console',
  '/dev/pts',
  '/dev/shm',
  '/proc',
  '/sys',
  '/dev',
]);

export type ChangeKind = 0 | 1 | 2;
/** One upper-dir entry: `Kind` 0 changed, 1 added, 2 deleted (Docker's ChangeType). */
export interface Change {
  Path: string;
  Kind: ChangeKind;
  /** Host path in the upper dir (a whiteout for deletions). */
  host: string;
  /** A directory whose lower contents are hidden (overlayfs opaque). */
  opaque?: boolean;
}

/** Directories of `upper` marked opaque (`trusted.overlay.opaque=y`), as container paths. */
async function opaqueDirs(upper: string): Promise<Set<string>> {
  const r = await run('getfattr', ['-R', '-P', '--absolute-names', '-n', 'trusted.overlay.opaque', upper], {
    allowFail: true,
  });
  const out = new Set<string>();
  let file = '';
  for (const line of r.stdout.split('\n')) {
    if (line.startsWith('# file: ')) file = line.slice(8);
    else if (/^trusted\.overlay\.opaque="y"/.test(line)) out.add('/' + path.relative(upper, file));
  }
  return out;
}

/** What the container changed: the upper dir against the image's layers (`lower`, lowest first). */
export async function upperChanges(upper: string, lower: string[]): Promise<Change[]> {
  const opaque = await opaqueDirs(upper);
  const inLower = (rel: string) =>
    lower.some((l) => {
      try {
        fs.lstatSync(path.join(l, rel));
        return true;
      } catch {
        return false;
      }
    });
  const out: Change[] = [];
  /** Walks one directory; returns whether anything under it was reported. */
  const walk = (rel: string): boolean => {
    let any = false;
    let names: string[];
    try {
      names = fs.readdirSync(path.join(upper, rel)).sort();
    } catch {
      return false;
    }
    for (const name of names) {
      const p = path.posix.join('/', rel, name);
      if (INIT_PATHS.has(p)) continue;
      const host = path.join(upper, rel, name);
      const st = fs.lstatSync(host);
      if (st.isCharacterDevice() && st.rdev === 0) {
        out.push({ Path: p, Kind: 2, host });
        any = true;
        continue;
      }
      const lowerHas = inLower(p);
      if (st.isDirectory()) {
        const at = out.length;
        const isOpaque = opaque.has(p);
        const below = walk(p);
        // A directory copied up only because something under it changed shows as changed with it.
        if (!lowerHas || below || isOpaque) {
          out.splice(at, 0, { Path: p, Kind: lowerHas ? 0 : 1, host, ...(isOpaque ? { opaque: true } : {}) });
          any = true;
        }
        continue;
      }
      out.push({ Path: p, Kind: lowerHas ? 0 : 1, host });
      any = true;
    }
    return any;
  };
  walk('');
  return out;
}

/** The changes as a layer tar: Docker whiteouts (`.wh.name`, `.wh..wh..opq`) for overlayfs's. */
export function changesLayer(changes: Change[]): Readable {
  const pack = tar.pack();
  const go = async () => {
    for (const c of changes) {
      const name = c.Path.slice(1);
      if (c.Kind === 2) {
        const wh = path.posix.join(path.posix.dirname(name), WHITEOUT_PREFIX + path.posix.basename(name));
        await entry(pack, { name: wh, size: 0, mode: 0o644, type: 'file' });
        continue;
      }
      const st = fs.lstatSync(c.host);
      const base = { name, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, mtime: st.mtime };
      if (st.isDirectory()) {
        await entry(pack, { ...base, type: 'directory' });
        if (c.opaque)
          await entry(pack, { name: path.posix.join(name, OPAQUE_MARKER), size: 0, mode: 0o644, type: 'file' });
      } else if (st.isSymbolicLink())
        await entry(pack, { ...base, type: 'symlink', linkname: fs.readlinkSync(c.host) });
      else if (st.isFile()) await fileEntry(pack, { ...base, type: 'file', size: st.size }, c.host);
      else if (st.isFIFO()) await entry(pack, { ...base, type: 'fifo' });
      else if (st.isCharacterDevice() || st.isBlockDevice()) {
        await entry(pack, {
          ...base,
          type: st.isCharacterDevice() ? 'character-device' : 'block-device',
          devmajor: Math.floor(st.rdev / 256) & 0xfff,
          devminor: (st.rdev & 0xff) | ((st.rdev >> 12) & 0xfff00),
        });
      }
      // Sockets are not archived, as in Docker.
    }
    pack.finalize();
  };
  go().catch((e: Error) => pack.destroy(e));
  // tar-stream's pack is a streamx Readable: it pipes like node's, its typings just differ.
  return pack as unknown as Readable;
}

function entry(pack: tar.Pack, header: Partial<tar.Header> & { name: string }, data?: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    pack.entry(header as tar.Header, data ?? Buffer.alloc(0), (err) => (err ? reject(err) : resolve()));
  });
}

/** A regular file's entry, its content streamed from disk (layers can hold big files). */
function fileEntry(pack: tar.Pack, header: Partial<tar.Header> & { name: string }, file: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const sink = pack.entry(header as tar.Header, (err) => (err ? reject(err) : resolve()));
    const src = fs.createReadStream(file);
    src.on('error', reject);
    src.pipe(sink as unknown as NodeJS.WritableStream);
  });
}
