import fs from 'node:fs';
import { ApiError, badRequest, conflict } from '../../util/errors.js';
import { newHexId } from '../../util/ids.js';
import type { ImageStore } from '../images/store.js';
import type { VolumeStore } from '../volumes/store.js';
import type { ContainerNetworks } from './container-networks.js';
import type { EndpointConfigRequest } from './endpoint-settings.js';
import { mergeHealthcheck, type Healthcheck } from './health.js';
import { verifyHostConfig } from './host-config.js';
import { normalizeLinks, parseLink } from './links.js';
import { resolveMountPoints } from './mounts.js';
import { validName } from './names.js';
import { randomName } from '../../util/random-name.js';
import { validatePortBindings } from './ports.js';
import { ZERO_TIME, saveRecordAsync, type ContainerConfig, type ContainerRecord, type HostConfig } from './record.js';
import { parseSignal } from './signals.js';
import type { ContainerTable } from './table.js';

/** What `create` takes: the Engine API's create body, minus networking, plus the name. */
export interface CreateOptions {
  name?: string;
  config: ContainerConfig;
  hostConfig?: HostConfig;
  /** `NetworkingConfig.EndpointsConfig` of the create request: `--ip`, `--network-alias`. */
  endpointsConfig?: Record<string, EndpointConfigRequest | null> | null;
}

/** What a create touches. */
export interface CreateParts {
  table: ContainerTable;
  images: ImageStore;
  volumes: VolumeStore;
  networks: ContainerNetworks;
}

type ImageConfig = Awaited<ReturnType<ImageStore['resolve']>>['config'];

const strList = (v: string[] | string | null | undefined): string[] | undefined =>
  v === null || v === undefined ? undefined : typeof v === 'string' ? [v] : v;

/** `POST /containers/create`: checks everything it can, reserves the name, writes the record. */
export async function createContainer(
  parts: CreateParts,
  opts: CreateOptions,
): Promise<{ Id: string; Warnings: string[] }> {
  const { table } = parts;
  const cfg = opts.config ?? {};
  if (!cfg.Image) throw badRequest('No image specified'); // Docker's "config.Image" check
  const hostConfig: HostConfig = verifyHostConfig({ NetworkMode: 'default', ...(opts.hostConfig ?? {}) });
  const mode = hostConfig.NetworkMode ?? 'default';
  if (!parts.networks.knows(mode)) throw badRequest(`network ${mode} not found`);
  const settings = parts.networks.endpointSettingsForCreate(opts.endpointsConfig);
  const name = chooseName(table, opts.name);
  if (
    typeof cfg.MacAddress === 'string' &&
    cfg.MacAddress !== '' &&
    !/^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$/.test(cfg.MacAddress)
  )
    throw badRequest(`${cfg.MacAddress} is not a valid mac address`);
  checkLinks(table, hostConfig, name, mode);
  const id = newHexId();
  table.names.set(name, id);
  const p = table.paths(id);
  /** Anonymous volumes made for this create, removed again if it fails. */
  const madeVolumes: string[] = [];
  try {
    const img = await parts.images.resolve(cfg.Image);
    const { config, argv } = mergedConfig(cfg, img.config, id);
    const rec: ContainerRecord = {
      id,
      name,
      created: new Date().toISOString(),
      image: cfg.Image,
      imageId: img.id,
      path: argv[0],
      args: argv.slice(1),
      config,
      hostConfig,
      state: {
        Status: 'created',
        Pid: 0,
        ExitCode: 0,
        Error: '',
        StartedAt: ZERO_TIME,
        FinishedAt: ZERO_TIME,
        OOMKilled: false,
      },
      restartCount: 0,
      ...(Object.keys(settings).length ? { endpointSettings: settings } : {}),
    };
    // Bad binds and mounts are refused now, not at start (the user is looked up at start, in the rootfs).
    validatePortBindings(hostConfig.PortBindings);
    rec.mountPoints = resolveMountPoints(
      parts.volumes,
      hostConfig,
      cfg.Volumes,
      img.config.Volumes,
      (ref) => table.get(ref),
      madeVolumes,
    );
    // On the thread pool: a service's tasks are created tens at once.
    await fs.promises.mkdir(p.dir, { recursive: true });
    await Promise.all([p.upper, p.work, p.rootfs].map((d) => fs.promises.mkdir(d, { recursive: true })));
    await fs.promises.writeFile(p.log, '');
    await saveRecordAsync(p.record, rec);
    table.records.set(id, rec);
    table.log.info({ id, name, image: cfg.Image }, 'container created');
    table.event(rec, 'create');
    return { Id: id, Warnings: [] };
  } catch (e) {
    table.names.delete(name);
    table.records.delete(id);
    fs.rmSync(p.dir, { recursive: true, force: true });
    for (const v of madeVolumes) await parts.volumes.remove(v).catch(() => undefined);
    throw e;
  }
}

/** The asked name if free (Docker's 409 otherwise), else a fresh random one; with the leading slash. */
function chooseName(table: ContainerTable, asked: string | undefined): string {
  let name: string;
  if (asked) {
    name = validName(asked);
    const owner = table.names.get(name);
    if (owner) {
      throw conflict(
        `Conflict. The container name "${name}" is already in use by container "${owner}". You have to remove (or rename) that container to be able to reuse that name.`,
      );
    }
  } else {
    do name = '/' + randomName();
    while (table.names.has(name));
  }
  return name;
}

/** `--link`: normalized into `hostConfig.Links`; each target must exist (running is checked at start). */
function checkLinks(table: ContainerTable, hostConfig: HostConfig, name: string, mode: string): void {
  const links = normalizeLinks(hostConfig.Links, name);
  if (!links.length) return;
  if (mode === 'host')
    throw badRequest(
      "conflicting options: host type networking can't be used with links. This would result in undefined behavior",
    );
  for (const l of links) {
    const child = parseLink(l).child;
    try {
      table.get(child);
    } catch (e) {
      if (e instanceof ApiError && e.status === 404)
        throw badRequest(`could not get container for ${child.slice(1)}: No such container: ${child.slice(1)}`);
      throw e;
    }
  }
  hostConfig.Links = links;
}

/** The container's config with the image's defaults filled in, and the argv it runs. */
function mergedConfig(
  cfg: ContainerConfig,
  image: ImageConfig,
  id: string,
): { config: ContainerConfig; argv: string[] } {
  const entrypoint =
    strList(cfg.Entrypoint) ??
    (cfg.Entrypoint === undefined || cfg.Entrypoint === null ? (image.Entrypoint ?? []) : []);
  // An entrypoint given at create time drops the image's Cmd, as in Docker.
  const cmd = strList(cfg.Cmd) ?? (strList(cfg.Entrypoint) ? [] : (image.Cmd ?? []));
  const argv = [...entrypoint, ...cmd];
  if (argv.length === 0) throw badRequest('No command specified');
  const env = mergeEnv(image.Env ?? [], cfg.Env ?? []);
  if (!env.some((e) => e.startsWith('PATH=')))
    env.unshift('PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin');
  const config: ContainerConfig = {
    ...cfg,
    Hostname: cfg.Hostname || id.slice(0, 12),
    Domainname: cfg.Domainname ?? '',
    User: cfg.User || image.User || '',
    Env: env,
    Cmd: cmd,
    Entrypoint: strList(cfg.Entrypoint) ?? (image.Entrypoint?.length ? image.Entrypoint : null),
    WorkingDir: cfg.WorkingDir || image.WorkingDir || '',
    Labels: { ...(image.Labels ?? {}), ...(cfg.Labels ?? {}) },
    ...(image.ExposedPorts || cfg.ExposedPorts
      ? { ExposedPorts: { ...(image.ExposedPorts ?? {}), ...(cfg.ExposedPorts ?? {}) } }
      : {}),
    StopSignal: cfg.StopSignal || image.StopSignal || undefined,
    Tty: cfg.Tty === true,
    OpenStdin: cfg.OpenStdin === true,
    StdinOnce: cfg.StdinOnce === true,
  };
  const health = mergeHealthcheck(cfg.Healthcheck as Healthcheck | undefined, image.Healthcheck);
  if (health) config.Healthcheck = health;
  if (config.StopSignal) parseSignal(config.StopSignal);
  return { config, argv };
}

/** Image env first, then the container's; a later `KEY=` replaces an earlier one. */
function mergeEnv(base: string[], over: string[]): string[] {
  const out = new Map<string, string>();
  for (const e of [...base, ...over]) {
    const i = e.indexOf('=');
    out.set(i < 0 ? e : e.slice(0, i), e);
  }
  return [...out.values()];
}
