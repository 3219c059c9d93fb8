import fs from 'node:fs';
import path from 'node:path';
import { ImageStore } from '../../src/engine/images/store.js';
import { createLogger } from '../../src/util/log.js';

/** An ImageStore on a scratch data root under `dir` (made here), as the daemon opens its own, logging nothing. */
export function openScratchImageStore(dir: string, logName: string): Promise<ImageStore> {
  fs.mkdirSync(dir, { recursive: true });
  return ImageStore.open(
    {
      dataRoot: path.join(dir, 'data'),
      execRoot: path.join(dir, 'exec'),
      insecureRegistries: [],
      labels: {},
      hostname: 'x',
      host: '',
    },
    createLogger(logName, 'silent'),
  );
}
