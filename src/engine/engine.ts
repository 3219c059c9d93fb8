import type { Logger } from '../util/log.js';
import type { DaemonConfig } from './config.js';
import { ImageStore } from './images/store.js';
import { ContainerManager } from './containers/manager.js';
import { BridgeNetwork } from './network/bridge.js';
import { EventLog } from './events.js';

/** The node's own containers and images: what `docker run/ps/images` talk to, and what the agent drives. */
export class Engine {
  private constructor(
    readonly config: DaemonConfig,
    readonly images: ImageStore,
    readonly bridge: BridgeNetwork,
    readonly containers: ContainerManager,
    /** `docker events`. */
    readonly events: EventLog,
  ) {}

  static async open(config: DaemonConfig, log: Logger): Promise<Engine> {
    const images = await ImageStore.open(config, log.child({ part: 'images' }));
    const bridge = await BridgeNetwork.open(config, log.child({ part: 'bridge' }));
    const events = new EventLog();
    const containers = await ContainerManager.open(config, log.child({ part: 'containers' }), images, bridge, events);
    return new Engine(config, images, bridge, containers, events);
  }

  /** Stops watching containers; the containers themselves keep running (conmon holds them). */
  async close(): Promise<void> {
    await this.containers.close();
  }
}
