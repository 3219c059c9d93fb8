import type { NodeDescription, Task } from '../../cluster/types.js';
import type { Engine } from '../../engine/engine.js';
import type { ContainerRecord } from '../../engine/containers/manager.js';
import { pullImage } from '../../engine/images/pull.js';
import { ProgressStream } from '../../engine/images/progress.js';
import { parseReference, withDefaultTag } from '../../engine/images/reference.js';
import { decodeRegistryAuth, type AuthConfig } from '../../engine/images/registry.js';
import { nameImage, type ImageSharing } from '../image-sharing.js';
import { Writable } from 'node:stream';
import type { Logger } from '../../util/log.js';
import { taskContainerConfig, validateTaskMounts, type TaskContainer, type TaskExecutor } from './executor.js';
import type { TaskFile } from './task-files.js';
import { TaskFileMounts } from './task-files-mount.js';
import path from 'node:path';
import { LocalSwarmNetworks } from './local-swarm-networks.js';

const TASK_LABEL = 'com.docker.swarm.task.id';

/** Runs tasks as containers of this node's engine (runc + conmon), so `docker ps` lists them. */
export class ContainerExecutor implements TaskExecutor {
  private readonly files: TaskFileMounts;
  private readonly localNets: LocalSwarmNetworks;

  /**
   * `describe`: this node's description, for service templates ({{.Node.Hostname}} …);
   * `sharing`: where images missing here come from besides the registry (the swarm's other nodes).
   */
  constructor(
    private readonly engine: Engine,
    private readonly log: Logger,
    private readonly describe?: () => NodeDescription,
    private readonly sharing?: ImageSharing,
  ) {
    this.files = new TaskFileMounts(path.join(engine.config.execRoot, 'task-files'));
    this.localNets = new LocalSwarmNetworks(engine, log);
    // A task container that stops or is removed any way (also `docker rm -f` by hand) takes its
    // files along: a secret stays on the node only while a task using it runs (swarm never
    // restarts a task's container in place; a new task gets its own files).
    engine.events.subscribe(undefined, (e) => {
      const taskId = e.Actor.Attributes[TASK_LABEL];
      if (e.Type === 'container' && (e.Action === 'destroy' || e.Action === 'die') && taskId) {
        this.files.unmount(taskId).catch((err) => this.log.warn({ err, task: taskId }, 'removing task files failed'));
      }
    });
  }

  private view(r: ContainerRecord): TaskContainer {
    const running = r.state.Status === 'running' || r.state.Status === 'paused';
    const health = running ? r.state.Health?.Status : undefined;
    return {
      containerId: r.id,
      taskId: r.config.Labels?.[TASK_LABEL] ?? '',
      running,
      pid: r.state.Pid || undefined,
      exitCode: running ? undefined : r.state.ExitCode,
      ...(health ? { health } : {}),
    };
  }

  list(): TaskContainer[] {
    return this.engine.containers
      .all()
      .filter((r) => r.config.Labels?.[TASK_LABEL])
      .map((r) => this.view(r));
  }

  find(taskId: string): TaskContainer | undefined {
    const r = this.engine.containers.listByLabels({ [TASK_LABEL]: taskId })[0];
    return r ? this.view(r) : undefined;
  }

  async prepare(task: Task, nodeId: string, files: TaskFile[] = []): Promise<TaskContainer> {
    const existing = this.find(task.ID);
    if (existing) return existing;
    validateTaskMounts(task.Spec.ContainerSpec?.Mounts ?? []);
    // Templates are expanded before the pull: a bad one rejects the task at once.
    const { name, config, hostConfig } = taskContainerConfig(task, nodeId, this.describe?.());
    const image = task.Spec.ContainerSpec?.Image ?? '';
    // `--with-registry-auth`: the dispatcher sent the service's credentials along with the task.
    const auth = decodeRegistryAuth(task.Spec.ContainerSpec?.PullOptions?.RegistryAuth);
    if (!this.engine.images.find(image)) await this.obtainImage(image, task.ID, auth);
    // Swarm networks replace the default bridge: the network agent wires the container at start;
    // a node-local swarm network is this node's bridge of that name, which the engine wires.
    const local = LocalSwarmNetworks.of(task);
    // Not yet: the overlay data path wires containers with no network of their own (mode none).
    if (local.length && local.length < (task.NetworksAttachments?.length ?? 0))
      throw new Error(
        `node-local swarm network ${local[0].Spec.Name} and overlay networks (ingress with published ports included) on one task: not supported`,
      );
    if (local.length) hostConfig.NetworkMode = local[0].Spec.Name ?? local[0].ID;
    else if (task.NetworksAttachments?.length) hostConfig.NetworkMode = 'none';
    if (files.length)
      hostConfig.Binds = [
        ...((hostConfig.Binds as string[] | undefined) ?? []),
        ...(await this.files.mount(task.ID, files)),
      ];
    try {
      const create = async () => {
        const made = await this.engine.containers.create({ name, config, hostConfig });
        // Further node-local networks join at every start, as `docker network connect` would.
        for (const n of local.slice(1)) await this.engine.containers.connectUserBridge(made.Id, n.Spec.Name ?? n.ID);
        return made;
      };
      const { Id } = local.length ? await this.localNets.withNetworks(local, create) : await create();
      return this.view(this.engine.containers.get(Id));
    } catch (e) {
      await this.files.unmount(task.ID);
      throw e;
    }
  }

  /**
   * Makes a missing image local. A pinned digest (`name:tag@sha256:…`) fixes the content, so
   * the peers that hold it come first and the registry after; a bare tag is the registry's to
   * say (source of truth), peers only when it cannot answer. A failure here that is not the
   * peers' is no task error yet: creating from the missing image gives Docker's "No such image".
   */
  private async obtainImage(image: string, taskId: string, auth: AuthConfig | undefined): Promise<void> {
    let ref;
    try {
      ref = withDefaultTag(parseReference(image));
    } catch {
      return;
    }
    // Pinned to the ID of an image here (loaded on this node, service pinned by the manager).
    if (ref.digest && this.engine.images.get(ref.digest)) return nameImage(this.engine, ref, ref.digest);
    const fromRegistry = async () => {
      const sink = new Writable({ write: (_c, _e, cb) => cb() });
      await pullImage(this.engine.images, ref, auth, new ProgressStream(() => sink));
      return true;
    };
    const fromPeers = async () => (this.sharing ? !!(await this.sharing.fetch(ref)) : false);
    const sources: [string, () => Promise<boolean>][] = [
      ['registry', fromRegistry],
      ['peers', fromPeers],
    ];
    if (ref.digest) sources.reverse();
    const errors: string[] = [];
    let peersFailed = false;
    for (const [name, get] of sources) {
      try {
        if (await get()) return;
        errors.push(`${name}: no node holds it`);
      } catch (e) {
        if (name === 'peers') peersFailed = true;
        errors.push(`${name}: ${(e as Error).message}`);
        this.log.warn({ err: e, image, task: taskId, from: name }, 'image fetch failed');
      }
    }
    if (peersFailed) throw new Error(`No such image: ${image} (${errors.join('; ')})`);
  }

  async start(containerId: string): Promise<TaskContainer> {
    await this.engine.containers.start(containerId);
    return this.view(this.engine.containers.get(containerId));
  }

  async stop(containerId: string, gracePeriodNs = 10e9): Promise<void> {
    if (!this.engine.containers.find(containerId)) return;
    await this.engine.containers.stop(containerId, Math.round(gracePeriodNs / 1e9)).catch((e) => {
      if ((e as { status?: number }).status !== 304) throw e;
    });
  }

  async remove(containerId: string): Promise<void> {
    const r = this.engine.containers.find(containerId);
    if (!r) return;
    // As dockerd's executor: a task's anonymous volumes go with its container.
    await this.engine.containers.remove(containerId, { force: true, volumes: true });
    const taskId = r.config.Labels?.[TASK_LABEL];
    if (taskId) await this.files.unmount(taskId);
    if (this.engine.userBridges.list().some((n) => n.swarmScope)) await this.localNets.release();
  }

  onExit(containerId: string, fn: () => void): () => void {
    return this.engine.containers.onExit(containerId, fn);
  }

  onHealth(containerId: string, fn: () => void): () => void {
    return this.engine.containers.onHealth(containerId, fn);
  }
}
