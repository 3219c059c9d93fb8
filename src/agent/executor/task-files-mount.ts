import fs from 'node:fs';
import path from 'node:path';
import { run } from '../../util/run.js';
import { isMounted } from '../../engine/containers/rootfs.js';
import type { TaskFile } from './task-files.js';

const PAGE = 4096;

/**
 * A task's secret and config files live on a tmpfs of their own under the exec root, never on
 * the node's disk; each file is bind-mounted read-only into the container. The tmpfs goes when
 * the task's container is removed.
 */
export class TaskFileMounts {
  constructor(private readonly root: string) {}

  dir(taskId: string): string {
    return path.join(this.root, taskId);
  }

  /** Writes the files (owner and mode applied); returns the container's `Binds`. */
  async mount(taskId: string, files: TaskFile[]): Promise<string[]> {
    const dir = this.dir(taskId);
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    if (!isMounted(dir)) {
      // Room for every file in whole pages, plus slack: small, so a task cannot fill the node's memory through it.
      const size = files.reduce((n, f) => n + Math.ceil(f.data.length / PAGE + 1) * PAGE, 0) + 16 * PAGE;
      await run('mount', ['-t', 'tmpfs', '-o', `nodev,noexec,nosuid,mode=0700,size=${size}`, 'tmpfs', dir]);
    }
    try {
      return files.map((f, i) => {
        const file = path.join(dir, `${f.kind}-${i}`);
        fs.writeFileSync(file, f.data, { mode: 0o600 });
        fs.chownSync(file, f.uid, f.gid);
        fs.chmodSync(file, f.mode);
        return `${file}:${f.target}:ro`;
      });
    } catch (e) {
      await this.unmount(taskId);
      throw e;
    }
  }

  async unmount(taskId: string): Promise<void> {
    const dir = this.dir(taskId);
    if (!fs.existsSync(dir)) return;
    if (isMounted(dir)) await run('umount', ['-l', dir], { allowFail: true });
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
