/**
 * The disk-full fault: one machine's data root is moved onto a tmpfs of bounded size (made for
 * this fault only), filled, and the daemon started on it. Writes through that daemon must be
 * refused with Docker's "no space left on device" while the rest of the swarm carries on; once
 * the space is freed, writes through it must work again. Healing copies the data root (with
 * what the daemon wrote meanwhile: etcd's log must never go back in time) onto the real disk.
 */
import fs from 'node:fs';
import { machinePaths } from '../../src/lab/settings.js';
import { run } from '../../src/util/run.js';
import { mountsUnder } from '../../src/lab/sweep.js';
import type { Swarm, Machine } from './chaos.js';
import { sleep, until } from './until.js';

/** Room above what the data root holds: an etcd WAL segment (64 MB) and its preallocated next one. */
const HEADROOM_MB = 256;
/** How long a write through the full daemon may take to be refused, and to work again once freed. */
const ANSWER_MS = 60_000;

/** Fills the filesystem of `root` with files named `.chaos-filler-<tag>*` (free() removes every one). */
async function fill(root: string, tag = '0'): Promise<void> {
  const st = fs.statfsSync(root);
  const big = `${root}/.chaos-filler-${tag}`;
  // fallocate on tmpfs may refuse what statfs called free: dd then takes it (it ends in ENOSPC by design).
  const fa = await run('fallocate', ['-l', String(Math.max(0, st.bavail * st.bsize - (4 << 20))), big], {
    allowFail: true,
  });
  if (fa.code !== 0) await run('dd', ['if=/dev/zero', `of=${big}`, 'bs=1M'], { allowFail: true });
  await run('dd', ['if=/dev/zero', `of=${root}/.chaos-filler-${tag}-top`, 'bs=4k'], { allowFail: true });
  const left = fs.statfsSync(root).bavail;
  if (left !== 0) throw new Error(`the tmpfs data root still has ${left} blocks free after filling`);
}

function free(root: string): void {
  for (const f of fs.readdirSync(root).filter((x) => x.startsWith('.chaos-filler')))
    fs.rmSync(`${root}/${f}`, { force: true });
}

const isMountpoint = async (p: string) => (await run('mountpoint', ['-q', p], { allowFail: true })).code === 0;

/** A write through the machine's own daemon: a local volume (it touches only that machine's disk). */
async function volumeCreate(s: Swarm, m: string, name: string): Promise<{ code: number; stderr: string; ms: number }> {
  const t0 = Date.now();
  const r = await s.d(m, ['volume', 'create', name], ANSWER_MS);
  return { code: r.code ?? -1, stderr: r.stderr.trim(), ms: Date.now() - t0 };
}

const freeMb = (root: string) => (fs.statfsSync(root).bavail * fs.statfsSync(root).bsize) / (1 << 20);

/**
 * A write through the daemon while its disk is full. The daemon frees space of its own now and
 * then (task containers of its last life removed, etcd dropping a preallocated WAL segment), so
 * the disk is filled again before each try, and a write taken is tried again: 3 taken is the failure.
 */
async function refusedOnFullDisk(s: Swarm, m: string, root: string): Promise<{ stderr: string; ms: number }> {
  for (let attempt = 1; ; attempt++) {
    const before = freeMb(root);
    if (before > 0) {
      await fill(root, String(attempt));
      console.log(`  disk-full: ${m} had ${before.toFixed(1)} MiB free again (its daemon freed it); filled again`);
    }
    const r = await volumeCreate(s, m, 'chaos-disk-full');
    if (r.code !== 0) return r;
    const after = freeMb(root);
    await s.d(m, ['volume', 'rm', 'chaos-disk-full']);
    if (attempt === 3)
      throw new Error(`${m}: volume create succeeded on a full disk, 3 times (${after.toFixed(1)} MiB free after)`);
    console.log(`  disk-full: ${m} took a write (${before.toFixed(1)} → ${after.toFixed(1)} MiB free); again`);
  }
}

export async function diskFull(
  s: Swarm,
  m: Machine,
  heartbeatUp: () => Promise<boolean>,
): Promise<{ target: string; detectMs?: number }> {
  const root = machinePaths(s.lab.labDir, m.name).dataRoot;
  const onDisk = `${root}.disk`;
  const back = `${root}.back`;
  // Outside the machine's directory: stopping and starting a machine unmounts everything under it.
  const tmpfs = `${s.lab.labDir}.disk-full-${m.name}`;
  s.faulted.add(m.name);
  const isLink = () => {
    try {
      return fs.lstatSync(root).isSymbolicLink();
    } catch {
      return false;
    }
  };
  const restore = async () => {
    if (!(await isMountpoint(tmpfs))) return;
    if (isLink()) await s.lab.machine(['stop', m.name]);
    // The stop unmounted what lay under the machine's directory, not what the daemon mounted through the link.
    for (const p of mountsUnder(tmpfs).filter((x) => x !== tmpfs)) await run('umount', ['-l', p], { allowFail: true });
    free(tmpfs);
    fs.rmSync(back, { recursive: true, force: true });
    fs.mkdirSync(back);
    await run('cp', ['-a', `${tmpfs}/.`, `${back}/`]);
    await run('umount', [tmpfs]);
    fs.rmdirSync(tmpfs);
    if (isLink()) {
      fs.unlinkSync(root);
      fs.renameSync(back, root);
      fs.rmSync(onDisk, { recursive: true, force: true });
    } else {
      fs.rmSync(back, { recursive: true, force: true });
    }
    await s.lab.machine(['start', m.name]);
  };
  try {
    await s.lab.machine(['stop', m.name]);
    const usedMb = Math.ceil(Number((await run('du', ['-sxb', root])).stdout.split('\t')[0]) / (1 << 20));
    const mode = fs.statSync(root).mode & 0o7777;
    fs.mkdirSync(tmpfs);
    await run('mount', [
      '-t',
      'tmpfs',
      '-o',
      `size=${usedMb + HEADROOM_MB}m,mode=${mode.toString(8)}`,
      `${s.lab.prefix}-diskfull`,
      tmpfs,
    ]);
    await run('cp', ['-a', `${root}/.`, `${tmpfs}/`]);
    fs.renameSync(root, onDisk);
    fs.symlinkSync(tmpfs, root);
    await fill(tmpfs);
    // Started with its disk full: it must come up (lab start waits for /_ping) and rejoin.
    const t0 = Date.now();
    await s.lab.machine(['start', m.name]);
    const ready = await until(60_000, heartbeatUp);
    if (ready === undefined) throw new Error(`${m.name} started on a full disk but its node is not Ready within 60 s`);
    const detectMs = Date.now() - t0;
    const refused = await refusedOnFullDisk(s, m.name, tmpfs);
    if (!/no space left on device/.test(refused.stderr))
      throw new Error(
        `${m.name}: volume create on a full disk answered "${refused.stderr}", not "no space left on device"`,
      );
    console.log(`  disk-full: ${m.name} refused a write in ${refused.ms} ms: ${refused.stderr}`);
    // A few heartbeats with the disk full: its tasks fail to start and go elsewhere.
    await sleep(5000);
    free(tmpfs);
    const t1 = Date.now();
    const ok = await until(ANSWER_MS, async () => (await volumeCreate(s, m.name, 'chaos-disk-full')).code === 0);
    if (ok === undefined)
      throw new Error(`${m.name}: writes still refused ${ANSWER_MS / 1000} s after space was freed`);
    console.log(`  disk-full: ${m.name} took writes again ${Date.now() - t1} ms after space was freed`);
    await s.d(m.name, ['volume', 'rm', 'chaos-disk-full']);
    await restore();
    return { target: m.name, detectMs };
  } catch (e) {
    // Kept for a post-mortem: the restore below restarts the daemon.
    const keep = `/tmp/chaos-disk-full-${s.lab.prefix}-${m.name}`;
    fs.mkdirSync(keep, { recursive: true });
    for (const f of [machinePaths(s.lab.labDir, m.name).log, `${tmpfs}/swarm/etcd.log`])
      if (fs.existsSync(f)) fs.copyFileSync(f, `${keep}/${f.split('/').pop()}`);
    console.log(`  disk-full: logs of ${m.name} kept in ${keep}`);
    throw e;
  } finally {
    // On a failure midway: the data root back on the real disk, no tmpfs left behind.
    try {
      await restore();
      if (isLink()) fs.unlinkSync(root);
      if (!fs.existsSync(root) && fs.existsSync(onDisk)) fs.renameSync(onDisk, root);
    } finally {
      s.faulted.delete(m.name);
    }
  }
}
