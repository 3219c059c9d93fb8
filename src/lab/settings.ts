import path from 'node:path';
import { DEFAULT_BRIDGE } from '../engine/network/names.js';
import { formatSubnet, overlaps, parseSubnet } from '../net/ipv4.js';

/** Where a lab keeps its state and how it names what it puts into the kernel. */
export interface LabSettings {
  labDir: string;
  /** Starts the name of every network namespace the lab makes: `<prefix>-hub`, `<prefix>-m-<machine>`. */
  prefix: string;
  /** The lab network: the hub bridge has its first address, machines the following ones. */
  subnet: string;
}

export const DEFAULT_LAB_DIR = '/var/lib/shoal-lab';
export const DEFAULT_PREFIX = 'shlab';
/** Clear of Docker's 172.17/16 bridge (inside every machine) and of Swarm's 10.0.0.0/8 pools. */
export const DEFAULT_SUBNET = '192.168.99.0/24';
export const REGISTRY_PORT = 5000;

/** Flags win over the environment, the environment over defaults. */
export function resolveSettings(flags: Partial<LabSettings>, env: NodeJS.ProcessEnv = process.env): LabSettings {
  const labDir = path.resolve(flags.labDir ?? env.SHOAL_LAB_DIR ?? DEFAULT_LAB_DIR);
  const prefix = flags.prefix ?? env.SHOAL_LAB_PREFIX ?? DEFAULT_PREFIX;
  const subnet = checkSubnet(flags.subnet ?? env.SHOAL_LAB_SUBNET ?? DEFAULT_SUBNET);
  if (!/^[a-z][a-z0-9-]{0,39}$/.test(prefix))
    throw new Error(`invalid lab prefix "${prefix}": lower-case letters, digits and dashes, at most 40`);
  return { labDir, prefix, subnet };
}

const RESERVED: [string, string][] = [
  [DEFAULT_BRIDGE.subnet, 'the default bridge inside every machine'],
  ['10.0.0.0/8', 'the address pools of Swarm networks'],
];

/** A lab subnet: between /16 and /29, clear of the networks machines make inside themselves. */
export function checkSubnet(cidr: string): string {
  const s = parseSubnet(cidr);
  if (s.prefixLen < 16 || s.prefixLen > 29)
    throw new Error(`lab subnet ${cidr}: prefix length must be between 16 and 29`);
  for (const [other, why] of RESERVED) {
    if (overlaps(s, parseSubnet(other))) throw new Error(`lab subnet ${cidr} overlaps ${other} (${why})`);
  }
  return formatSubnet(s);
}

/** Machine names as docker-machine accepts them, short enough for namespace names. */
export function checkMachineName(name: string): string {
  if (!/^[a-zA-Z0-9][a-zA-Z0-9.-]{0,62}$/.test(name)) {
    throw new Error(
      `Invalid machine name "${name}": use letters, digits, dots and dashes, starting with a letter or digit`,
    );
  }
  return name;
}

/** Every name the lab gives a kernel object, derived from the prefix in one place. */
export class LabNames {
  /** Inside the hub namespace only, so a fixed name is safe. */
  static readonly hubBridge = 'labbr0';
  /** A machine's lab interface, inside its own namespace. */
  static readonly machineIf = 'eth0';

  constructor(readonly prefix: string) {}

  get hubNs(): string {
    return `${this.prefix}-hub`;
  }

  machineNs(machine: string): string {
    return `${this.prefix}-m-${machine}`;
  }

  /** Hub end of a machine's veth, by the machine's host index in the subnet (names must fit 15 characters). */
  hubVeth(index: number): string {
    return `vm${index}`;
  }

  /** True for every namespace name this lab can have made. */
  ownsNs(ns: string): boolean {
    return ns === this.hubNs || ns.startsWith(`${this.prefix}-m-`);
  }
}

/** Paths under the lab directory. */
export function labPaths(labDir: string) {
  return {
    state: path.join(labDir, 'lab.json'),
    lock: path.join(labDir, 'lab.lock'),
    machines: path.join(labDir, 'machines'),
    registry: path.join(labDir, 'registry'),
  };
}

export function machinePaths(labDir: string, machine: string) {
  const dir = path.join(labPaths(labDir).machines, machine);
  return {
    dir,
    dataRoot: path.join(dir, 'data'),
    execRoot: path.join(dir, 'exec'),
    socket: path.join(dir, 'shoal.sock'),
    log: path.join(dir, 'shoald.log'),
  };
}
