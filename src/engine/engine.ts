import type { Logger } from '../util/log.js';
import type { DaemonConfig } from './config.js';
import { ImageStore } from './images/store.js';
import { ContainerManager } from './containers/manager.js';
import { BridgeNetwork } from './network/bridge.js';
import { EventLog } from './events.js';
import { VolumeStore } from './volumes/store.js';
import { UserBridges } from './network/user-bridges.js';
import { DEFAULT_BRIDGE, GW_BRIDGE } from './network/names.js';

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
    /** `docker network create NAME`: user-defined bridge networks. */
    readonly userBridges: UserBridges,
  ) {}

  static async open(config: DaemonConfig, log: Logger): Promise<Engine> {
    const images = await ImageStore.open(config, log.child({ part: 'images' }));
    const bridge = await BridgeNetwork.open(config, log.child({ part: 'bridge' }));
    const events = new EventLog();
    const volumes = VolumeStore.open(config.dataRoot, log.child({ part: 'volumes' }));
    volumes.onEvent = (action, name, attrs) => events.emit('volume', action, name, attrs);
    // The swarm's gateway bridge takes its subnet when the node joins: never handed to a user bridge.
    const userBridges = await UserBridges.open(config, log.child({ part: 'user-bridges' }), [
      DEFAULT_BRIDGE.subnet,
      GW_BRIDGE.subnet,
    ]);
    userBridges.onEvent = (action, n, containerId) =>
      events.emit('network', action, n.id, { container: containerId, name: n.name, type: 'bridge' });
    const containers = await ContainerManager.open(
      config,
      log.child({ part: 'containers' }),
      images,
      bridge,
      events,
      volumes,
      userBridges,
    );
    return new Engine(config, images, bridge, containers, events, volumes, userBridges);
  }

  /** Stops watching containers; the containers themselves keep running (conmon holds them). */
  async close(): Promise<void> {
    await this.containers.close();
    await this.userBridges.close();
  }
}
