import type { Logger } from '../../util/log.js';
import type { DaemonConfig } from '../config.js';
import type { ImageStore } from '../images/store.js';
import type { BridgeNetwork } from '../network/bridge.js';

// STUB: replaced by the container manager implementation.
export class ContainerManager {
  private constructor(readonly config: DaemonConfig, readonly log: Logger, readonly images: ImageStore, readonly bridge: BridgeNetwork) {}
  static async open(config: DaemonConfig, log: Logger, images: ImageStore, bridge: BridgeNetwork): Promise<ContainerManager> {
    return new ContainerManager(config, log, images, bridge);
  }
  counts(): { total: number; running: number; paused: number; stopped: number } {
    return { total: 0, running: 0, paused: 0, stopped: 0 };
  }
  async close(): Promise<void> {}
}
