import fs from 'node:fs';
import path from 'node:path';
import { run } from '../../util/run.js';

/**
 * Fills an empty volume with what the container's image has at the mount's destination, with
 * that directory's owner and mode, as dockerd does at start unless the mount says nocopy. A
 * volume that already holds anything is left alone, so this runs once per volume in practice.
 */
export async function copyImageContent(rootfs: string, destination: string, volumeData: string): Promise<void> {
  const src = path.join(rootfs, destination);
  let real: string;
  try {
    real = fs.realpathSync(src);
  } catch {
    return; // nothing there in the image
  }
  // A symlink in the image must not lead the copy out of the container's root.
  const root = fs.realpathSync(rootfs);
  if (real !== root && !real.startsWith(root + '/')) return;
  const st = fs.statSync(real);
  if (!st.isDirectory() || fs.readdirSync(volumeData).length > 0) return;
  if (fs.readdirSync(real).length > 0) await run('cp', ['-a', `${real}/.`, volumeData]);
  fs.chownSync(volumeData, st.uid, st.gid);
  fs.chmodSync(volumeData, st.mode & 0o7777);
}
