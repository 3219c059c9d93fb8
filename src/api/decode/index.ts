/**
 * Request bodies, decoded as dockerd decodes them (Go's encoding/json into Docker's types).
 *
 * In a route:
 *
 *     const spec = await ctx.body('ServiceSpec');      // typed: ServiceSpec
 *
 * The body is read under MAX_JSON_BODY (413 beyond it), parsed with a depth limit, and decoded
 * against the schema generated from Docker's swagger.yaml (schema.generated.ts; regenerate with
 * scripts/gen-api-schema.mjs): keys match fields case-insensitively and come out with Docker's
 * names, map keys stay as sent, unknown fields are dropped, null is absent, and a wrong type or
 * an out-of-range number is a 400 with Go's message before the route does anything. So a route
 * needs no type checks of its own for what the schema covers (it still checks values: enums,
 * required fields, references). The names below are the bodies that exist; add one by adding it
 * to ROOTS in the script and to BodyTypes here.
 *
 * Raw uploads (`docker load`, `import`, `build`, archive PUT) are not JSON: their routes stream
 * `ctx.req` and no limit applies.
 */
import type { ClusterSpec, ConfigSpec, NodeSpec, SecretSpec, ServiceSpec } from '../../cluster/types.js';
import type { InitRequest, JoinRequest } from '../../node/node.js';
import type { ContainerConfig, HostConfig } from '../../engine/containers/record.js';
import type { CreateOptions } from '../../engine/containers/manager.js';
import type { UpdateConfig } from '../../engine/containers/update.js';
import type { ExecConfig } from '../../engine/containers/exec.js';
import type { AuthConfig } from '../../engine/images/registry.js';
import type { NetworkCreateRequest } from '../../manager/networks/swarm-networks.js';
import { badRequest } from '../../util/errors.js';
import { GoDecoder, JsonTypeError } from './go-decode.js';
import { JsonEmptyError, JsonSyntaxError, parseJsonTree } from './json-tree.js';
import { SCHEMA } from './schema.generated.js';
import { effectiveHostConfig } from './legacy-host-config.js';

export { discardRest, MAX_JSON_BODY, readLimited, tooLarge } from './body.js';

/** Go allows 10000 levels; no Docker body has more than ~15, so shoal stops much earlier. */
export const MAX_JSON_DEPTH = 1000;

export interface EndpointSettingsBody {
  IPAMConfig?: { IPv4Address?: string; IPv6Address?: string; LinkLocalIPs?: string[] };
  Links?: string[];
  Aliases?: string[];
  MacAddress?: string;
  DriverOpts?: Record<string, string>;
  [k: string]: unknown;
}

/** What each body decodes to (the project's types for them). */
export interface BodyTypes {
  ContainerCreate: ContainerConfig & {
    HostConfig?: HostConfig;
    NetworkingConfig?: { EndpointsConfig?: CreateOptions['endpointsConfig'] };
  };
  ContainerUpdate: UpdateConfig;
  /** `POST /commit`: the config to apply to the new image. */
  ContainerConfig: ContainerConfig;
  ExecConfig: ExecConfig & { Detach?: boolean };
  ExecStartCheck: { Detach?: boolean; Tty?: boolean };
  VolumeCreateBody: {
    Name?: string;
    Driver?: string;
    DriverOpts?: Record<string, string>;
    Labels?: Record<string, string>;
  };
  NetworkCreateRequest: NetworkCreateRequest & {
    CheckDuplicate?: boolean;
    ConfigOnly?: boolean;
    ConfigFrom?: { Network?: string };
  };
  NetworkConnect: { Container?: string; EndpointConfig?: EndpointSettingsBody };
  NetworkDisconnect: { Container?: string; Force?: boolean };
  SwarmInitRequest: InitRequest & { AutoLockManagers?: boolean; Availability?: string };
  SwarmJoinRequest: JoinRequest & { DataPathAddr?: string; Availability?: string };
  SwarmUnlockRequest: { UnlockKey?: string };
  SwarmSpec: ClusterSpec;
  ServiceSpec: ServiceSpec;
  NodeSpec: NodeSpec;
  SecretSpec: SecretSpec;
  ConfigSpec: ConfigSpec;
  AuthConfig: AuthConfig;
}
export type BodyName = keyof BodyTypes;

/**
 * How dockerd 20.10 words a failed decode of each body. Most routes answer 400 with Go's error
 * as it is, and "got EOF while reading request body" for an empty one. Container create and
 * update answered 500 there (a bug); newer dockerd answers 400 "invalid JSON: …", and so does
 * shoal. `POST /commit` takes an empty body as no config.
 */
interface Wording {
  prefix: string;
  emptyIsZero?: boolean;
}
const WORDING: Partial<Record<BodyName, Wording>> = {
  ContainerCreate: { prefix: 'invalid JSON: ' },
  ContainerUpdate: { prefix: 'invalid JSON: ' },
  ContainerConfig: { prefix: 'invalid JSON: ', emptyIsZero: true },
};

const decoder = new GoDecoder(SCHEMA);

/** Decodes a whole body (bytes or text) as the Docker type `name`; errors are ApiError 400. */
export function decodeBody<K extends BodyName>(name: K, body: Buffer | string): BodyTypes[K] {
  const wording: Wording = WORDING[name] ?? { prefix: '' };
  const text = typeof body === 'string' ? body : body.toString('utf8');
  try {
    const tree = parseJsonTree(text, MAX_JSON_DEPTH);
    const out = decoder.decode(tree, name);
    if (name === 'ContainerCreate') {
      const hc = effectiveHostConfig(tree, out.HostConfig as HostConfig | undefined);
      if (hc) out.HostConfig = hc;
    }
    return out as BodyTypes[K];
  } catch (e) {
    if (e instanceof JsonEmptyError) {
      if (wording.emptyIsZero) return {} as BodyTypes[K];
      throw badRequest(`${wording.prefix}got EOF while reading request body`);
    }
    if (e instanceof JsonSyntaxError || e instanceof JsonTypeError) throw badRequest(`${wording.prefix}${e.message}`);
    throw e;
  }
}
