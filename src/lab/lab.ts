import fs from 'node:fs';
import { purgeDaemonState } from '../engine/containers/purge.js';
import { daemonPaths, defaultConfig } from '../engine/config.js';
import { allocateMachineIndex, hubAddress, machineAddress } from './addresses.js';
import { API_TLS_PORT, ensureMachineCerts, machineCertPaths, tlsDaemonArgs } from './certs.js';
import { isDaemon, machineSandboxPrefix, ping, spawnDaemon, waitForDaemon, type MachineDaemonSpec } from './daemon.js';
import {
  deleteNetns,
  ensureHub,
  listNetns,
  netnsExists,
  netnsPath,
  plugMachine,
  setConnected,
  unplugMachine,
} from './network.js';
import { registryAnswers, registryRunning, startRegistry, type RegistrySpec } from './registry.js';
import { checkMachineName, LabNames, labPaths, machinePaths, REGISTRY_PORT, type LabSettings } from './settings.js';
import {
  listMachines,
  readLab,
  readMachine,
  withLabLock,
  writeLab,
  writeMachine,
  type LabRecord,
  type MachineRecord,
} from './state.js';
import {
  cutPower,
  deleteRuncContainers,
  findProcesses,
  killPid,
  killProcesses,
  mountsUnder,
  netnsInode,
  unmountUnder,
} from './sweep.js';

/** A user mistake (unknown machine, taken name…): the CLI prints the message alone. */
export class LabError extends Error {}

export const noSuchMachine = (name: string) => new LabError(`Host does not exist: "${name}"`);

export type MachineState = 'Running' | 'Stopped' | 'Error';

export interface MachineStatus extends MachineRecord {
  state: MachineState;
  /** `unix://…` of its daemon, for DOCKER_HOST. */
  url: string;
}

export interface CreateOptions {
  /** `k=v` engine labels (`docker node inspect` .Description.Engine.Labels, constraints on engine.labels.k). */
  engineLabels?: string[];
  insecureRegistries?: string[];
  /** `flag=value` or `flag`: passed to its daemon as `--flag value` (docker-machine's --engine-opt). */
  engineOpts?: string[];
}

/** Flags the lab sets itself: an --engine-opt may not change them (the machine would not be found). */
const LAB_FLAGS = new Set([
  'host',
  'H',
  'data-root',
  'exec-root',
  'hostname',
  'network-sandbox-prefix',
  'tlsverify',
  'tlscacert',
  'tlscert',
  'tlskey',
]);

/** `dashboard-addr=0.0.0.0:8080` → `--dashboard-addr 0.0.0.0:8080`; `debug` → `--debug`. */
export function engineOptArgs(opts: string[]): string[] {
  const args: string[] = [];
  for (const o of opts) {
    const i = o.indexOf('=');
    const flag = i < 0 ? o : o.slice(0, i);
    if (!/^[a-z][a-z0-9-]*$/.test(flag))
      throw new LabError(`invalid engine option "${o}": want FLAG=VALUE or FLAG (a shoald flag without the dashes)`);
    if (LAB_FLAGS.has(flag)) throw new LabError(`invalid engine option "${o}": the lab sets --${flag} itself`);
    args.push(`--${flag}`);
    if (i >= 0) args.push(o.slice(i + 1));
  }
  return args;
}

export interface PruneReport {
  namespaces: string[];
  processes: number;
  mounts: number;
}

/** `shoal machine`: machines made of network namespaces on this host, each with its own shoald. */
export class Lab {
  readonly names: LabNames;

  private constructor(readonly settings: LabSettings) {
    this.names = new LabNames(settings.prefix);
  }

  /**
   * The lab in `settings.labDir`. Once a lab exists its prefix and subnet are the ones it was
   * made with; asking explicitly for other ones is an error rather than a second, clashing lab.
   */
  static open(settings: LabSettings, explicit: { prefix?: boolean; subnet?: boolean } = {}): Lab {
    const rec = readLab(settings.labDir);
    if (!rec) return new Lab(settings);
    if (explicit.prefix && rec.prefix !== settings.prefix)
      throw new LabError(`the lab in ${settings.labDir} uses prefix ${rec.prefix}, not ${settings.prefix}`);
    if (explicit.subnet && rec.subnet !== settings.subnet)
      throw new LabError(`the lab in ${settings.labDir} uses subnet ${rec.subnet}, not ${settings.subnet}`);
    return new Lab({ ...settings, prefix: rec.prefix, subnet: rec.subnet });
  }

  get labDir(): string {
    return this.settings.labDir;
  }

  /** HOST:PORT of the lab registry: the hub's address, fixed for the lab's life. */
  get registryAddress(): string {
    return `${hubAddress(this.settings.subnet)}:${REGISTRY_PORT}`;
  }

  private registrySpec(): RegistrySpec {
    return { ns: this.names.hubNs, dir: labPaths(this.labDir).registry, address: this.registryAddress };
  }

  private labRecord(): LabRecord {
    return readLab(this.labDir) ?? { prefix: this.settings.prefix, subnet: this.settings.subnet };
  }

  get(name: string): MachineRecord {
    const rec = readMachine(this.labDir, checkMachineName(name));
    if (!rec) throw noSuchMachine(name);
    return rec;
  }

  url(name: string): string {
    return `unix://${machinePaths(this.labDir, name).socket}`;
  }

  /** `tcp://<address>:2376` of the machine's daemon, with TLS (`machine env --tls`). */
  tlsUrl(name: string): string {
    return `tcp://${this.get(name).address}:${API_TLS_PORT}`;
  }

  /** DOCKER_CERT_PATH for the machine: ca.pem, cert.pem, key.pem. */
  certPath(name: string): string {
    this.get(name);
    return machineCertPaths(machinePaths(this.labDir, name).dir).dir;
  }

  /**
   * `regenerate-certs`: new server and client certificates (same lab CA). The daemon reads them
   * at once on SIGHUP (and within seconds anyway); connections already open keep theirs.
   */
  async regenerateCerts(name: string): Promise<void> {
    await withLabLock(this.labDir, async () => {
      const rec = this.get(name);
      const p = machinePaths(this.labDir, name);
      await ensureMachineCerts(this.labDir, p.dir, name, rec.address, true);
      if (isDaemon(rec.pid, p.socket)) process.kill(rec.pid!, 'SIGHUP');
    });
  }

  private spec(rec: MachineRecord): MachineDaemonSpec {
    const p = machinePaths(this.labDir, rec.name);
    return {
      extraArgs: [...tlsDaemonArgs(machineCertPaths(p.dir)), ...engineOptArgs(rec.engineOpts ?? [])],
      name: rec.name,
      ns: rec.ns,
      dir: p.dir,
      dataRoot: p.dataRoot,
      execRoot: p.execRoot,
      socket: p.socket,
      log: p.log,
      insecureRegistries: [this.registryAddress, ...(rec.insecureRegistries ?? [])],
      labels: rec.engineLabels ?? [],
    };
  }

  async create(name: string, opts: CreateOptions = {}): Promise<MachineRecord> {
    checkMachineName(name);
    for (const l of opts.engineLabels ?? [])
      if (!/^[^=\s]+=/.test(l)) throw new LabError(`invalid engine label "${l}": want KEY=VALUE`);
    engineOptArgs(opts.engineOpts ?? []);
    return withLabLock(this.labDir, async () => {
      if (readMachine(this.labDir, name)) throw new LabError(`Host already exists: "${name}"`);
      if (!readLab(this.labDir)) writeLab(this.labDir, this.labRecord());
      await ensureHub(this.names, this.settings.subnet);
      const index = allocateMachineIndex(
        this.settings.subnet,
        listMachines(this.labDir).map((m) => m.index),
      );
      const rec: MachineRecord = {
        name,
        index,
        address: machineAddress(this.settings.subnet, index),
        ns: this.names.machineNs(name),
        hubVeth: this.names.hubVeth(index),
        created: new Date().toISOString(),
        running: true,
        disconnected: false,
        ...(opts.engineLabels?.length ? { engineLabels: opts.engineLabels } : {}),
        ...(opts.insecureRegistries?.length ? { insecureRegistries: opts.insecureRegistries } : {}),
        ...(opts.engineOpts?.length ? { engineOpts: opts.engineOpts } : {}),
      };
      writeMachine(this.labDir, rec);
      try {
        await plugMachine(this.names, this.settings.subnet, rec);
        await this.boot(rec);
      } catch (e) {
        // Nothing half-made stays behind: the machine is removed as if it never was.
        await this.halt(rec, { destroy: true }).catch(() => {});
        fs.rmSync(machinePaths(this.labDir, name).dir, { recursive: true, force: true });
        throw e;
      }
      return rec;
    });
  }

  /** Starts the daemon and records its PID before waiting, so a crash meanwhile leaves it findable. */
  private async boot(rec: MachineRecord): Promise<void> {
    const spec = this.spec(rec);
    await ensureMachineCerts(this.labDir, spec.dir, rec.name, rec.address);
    const { pid, exited } = spawnDaemon(spec);
    rec.pid = pid;
    writeMachine(this.labDir, rec);
    await waitForDaemon(spec, exited);
  }

  /**
   * A power cut: the daemon, its containers and everything they hold in the kernel go (processes,
   * runc state, mounts, the namespace with its interfaces and nftables); the data root stays
   * unless `destroy` (rm) asks for the containers to be forgotten too.
   */
  private async halt(rec: MachineRecord, opts: { destroy: boolean }): Promise<void> {
    const p = machinePaths(this.labDir, rec.name);
    if (isDaemon(rec.pid, p.socket)) await killPid(rec.pid, 'SIGKILL');
    const match = {
      dirs: [p.dir],
      netnsInodes: [netnsInode(netnsPath(rec.ns))].filter((i): i is number => i !== undefined),
    };
    await cutPower(
      match,
      daemonPaths({ ...defaultConfig(), dataRoot: p.dataRoot, execRoot: p.execRoot }).runcRoot,
      p.dir,
    );
    // purgeDaemonState also forgets the containers: right for rm, wrong for a power cut, after
    // which a booting daemon finds its containers' records (and restarts those that ask for it).
    if (opts.destroy) await purgeDaemonState({ dataRoot: p.dataRoot, execRoot: p.execRoot });
    // Runtime state dies with the machine, as /run does.
    fs.rmSync(p.execRoot, { recursive: true, force: true });
    fs.rmSync(p.socket, { force: true });
    await unplugMachine(this.names, rec);
    // The daemon's overlay sandboxes live in the kernel-wide /run/netns: they go with the machine.
    for (const ns of (await listNetns()).filter((n) => n.startsWith(`${machineSandboxPrefix(rec.ns)}-`)))
      await deleteNetns(ns);
  }

  async status(rec: MachineRecord): Promise<MachineStatus> {
    const socket = machinePaths(this.labDir, rec.name).socket;
    let state: MachineState = 'Stopped';
    if (isDaemon(rec.pid, socket)) state = (await ping(socket)) ? 'Running' : 'Error';
    return { ...rec, state, url: `unix://${socket}` };
  }

  async list(): Promise<MachineStatus[]> {
    return Promise.all(listMachines(this.labDir).map((m) => this.status(m)));
  }

  /**
   * Starts the machine's daemon again after it died (kill -9), leaving its containers, mounts
   * and network as they are: a shoald restart, not a reboot. False when it is still running.
   */
  async respawnDaemon(name: string): Promise<boolean> {
    return withLabLock(this.labDir, async () => {
      const rec = this.get(name);
      if (isDaemon(rec.pid, machinePaths(this.labDir, name).socket)) return false;
      await this.boot(rec);
      return true;
    });
  }

  /** Returns false when the machine was already stopped. */
  async stop(name: string): Promise<boolean> {
    return withLabLock(this.labDir, async () => {
      const rec = this.get(name);
      const wasRunning = isDaemon(rec.pid, machinePaths(this.labDir, name).socket) || netnsExists(rec.ns);
      await this.halt(rec, { destroy: false });
      rec.running = false;
      delete rec.pid;
      writeMachine(this.labDir, rec);
      return wasRunning;
    });
  }

  /** Boots a stopped machine from its kept data; returns false when it was already running. */
  async start(name: string): Promise<boolean> {
    return withLabLock(this.labDir, async () => {
      const rec = this.get(name);
      if (isDaemon(rec.pid, machinePaths(this.labDir, name).socket) && netnsExists(rec.ns)) return false;
      await this.halt(rec, { destroy: false }); // whatever a crash left, so the boot starts clean
      await ensureHub(this.names, this.settings.subnet);
      await plugMachine(this.names, this.settings.subnet, rec);
      rec.running = true;
      await this.boot(rec);
      return true;
    });
  }

  /** Gone for good: daemon, containers, mounts, namespace and data. `force` goes on past errors and missing records. */
  async rm(name: string, force = false): Promise<void> {
    checkMachineName(name);
    await withLabLock(this.labDir, async () => {
      let rec = readMachine(this.labDir, name);
      if (!rec) {
        if (!force) throw noSuchMachine(name);
        rec = {
          name,
          index: 0,
          address: '',
          ns: this.names.machineNs(name),
          hubVeth: '',
          created: '',
          running: false,
          disconnected: false,
        };
      }
      try {
        await this.halt(rec, { destroy: true });
      } catch (e) {
        if (!force) throw e;
      }
      fs.rmSync(machinePaths(this.labDir, name).dir, { recursive: true, force: true });
    });
  }

  /** Cuts the machine off the lab network (or back on) without stopping it; remembered across stop/start. */
  async setConnected(name: string, connected: boolean): Promise<void> {
    await withLabLock(this.labDir, async () => {
      const rec = this.get(name);
      rec.disconnected = !connected;
      writeMachine(this.labDir, rec);
      await setConnected(this.names, rec, connected);
    });
  }

  /** The lab registry, started in the hub namespace unless it already answers; returns HOST:PORT. */
  async ensureRegistry(): Promise<string> {
    return withLabLock(this.labDir, async () => {
      const lab = this.labRecord();
      const spec = this.registrySpec();
      await ensureHub(this.names, this.settings.subnet);
      if (registryRunning(lab.registryPid, spec) && (await registryAnswers(spec))) return spec.address;
      if (registryRunning(lab.registryPid, spec)) await killPid(lab.registryPid, 'SIGTERM');
      lab.registryPid = await startRegistry(spec);
      writeLab(this.labDir, lab);
      return spec.address;
    });
  }

  /**
   * Removes everything any lab with this directory or prefix made, even after a crash: found by
   * what the lab owns (namespaces by prefix, processes naming or living in the lab directory or
   * its namespaces, mounts under the directory), never by program names.
   */
  async prune(): Promise<PruneReport> {
    const prefixes = new Set([this.settings.prefix, readLab(this.labDir)?.prefix].filter((p): p is string => !!p));
    const owned = (ns: string) => [...prefixes].some((p) => new LabNames(p).ownsNs(ns));
    return withLabLock(this.labDir, async () => {
      const namespaces = (await listNetns()).filter(owned);
      const match = {
        dirs: [this.labDir],
        netnsInodes: namespaces.map((n) => netnsInode(netnsPath(n))).filter((i): i is number => i !== undefined),
      };
      const processes = findProcesses(match).length;
      await killProcesses(match);
      for (const m of listMachineDirs(this.labDir)) {
        const p = machinePaths(this.labDir, m);
        await purgeDaemonState({ dataRoot: p.dataRoot, execRoot: p.execRoot }).catch(() => {});
        await deleteRuncContainers(
          daemonPaths({ ...defaultConfig(), dataRoot: p.dataRoot, execRoot: p.execRoot }).runcRoot,
        );
      }
      await killProcesses(match);
      const mounts = mountsUnder(this.labDir).length;
      await unmountUnder(this.labDir);
      // Machines first: their veths hang on the hub's bridge.
      for (const ns of namespaces.sort((a, b) => Number(a === this.names.hubNs) - Number(b === this.names.hubNs)))
        await deleteNetns(ns);
      fs.rmSync(this.labDir, { recursive: true, force: true });
      return { namespaces, processes, mounts };
    });
  }
}

function listMachineDirs(labDir: string): string[] {
  try {
    return fs.readdirSync(labPaths(labDir).machines);
  } catch {
    return [];
  }
}
