import type { Logger } from '../util/log.js';
import type { DaemonConfig } from './config.js';
import { ImageStore } from './images/store.js';
import { ContainerManager } from './containers/manager.js';
import { BridgeNetwork } from './network/bridge.js';
import { EventLog } from './events.js';
import { VolumeStore } from './volumes/store.js';

/** The node's own containers and images: what `docker run/ps/images` talk to, and what the agent drives. */
export class Engine {
  private constructor(
    readonly config: DaemonConfig,
    readonly images: ImageStore,
    readonly bridge: BridgeNetwork,
    readonly containers: ContainerManager,
    /** `docker events`. */
    readonly events: EventLog,
    /** `docker volume …`: named and anonymous volumes (local driver). */
    readonly volumes: VolumeStore,
  ) {}

  static async open(config: DaemonConfig, log: Logger): Promise<Engine> {
    const images = await ImageStore.open(config, log.child({ part: 'images' }));
    const bridge = await BridgeNetwork.open(config, log.child({ part: 'bridge' }));
    const events = new EventLog();
    const volumes = VolumeStore.open(config.dataRoot, log.child({ part: 'volumes' }));
    volumes.onEvent = (action, name, attrs) => events.emit('volume', action, name, attrs);
    const containers = await ContainerManager.open(config, log.child({ part: 'containers' }), images, bridge, events, volumes);
    return new Engine(config, images, bridge, containers, events, volumes);
  }

  /** Stops watching containers; the containers themselves keep running (conmon holds them). */
  async close(): Promise<void> {
    await this.containers.close();
  }
}
