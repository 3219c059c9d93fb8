import type { Logger } from '../../util/log.js';
import type { DaemonConfig } from '../config.js';
import type { EndpointInfo } from '../types.js';

// STUB: replaced by the bridge network implementation.
export class BridgeNetwork {
  private constructor(readonly config: DaemonConfig, readonly log: Logger) {}
  static async open(config: DaemonConfig, log: Logger): Promise<BridgeNetwork> {
    return new BridgeNetwork(config, log);
  }
  /** Gives the container whose init is `pid` a veth on the default bridge; idempotent per container. */
  async connect(containerId: string, pid: number): Promise<EndpointInfo> {
    throw new Error(`not implemented ${containerId} ${pid}`);
  }
  /** Frees the container's address (its veth dies with its namespace). */
  async disconnect(containerId: string): Promise<void> {
    void containerId;
  }
}
