import type { Logger } from '../../util/log.js';
import type { DaemonConfig } from '../config.js';
import type { ResolvedImage } from '../types.js';
import { noSuchImage } from '../../util/errors.js';

// STUB: replaced by the image store implementation.
export class ImageStore {
  private constructor(readonly config: DaemonConfig, readonly log: Logger) {}
  static async open(config: DaemonConfig, log: Logger): Promise<ImageStore> {
    return new ImageStore(config, log);
  }
  /** Finds a local image by name[:tag], name@digest, full or short ID. 404 "No such image" otherwise. */
  async resolve(ref: string): Promise<ResolvedImage> {
    throw noSuchImage(ref);
  }
  count(): number {
    return 0;
  }
}
