import type { Prng } from '../../test/helpers/prng.js';
import type { Json } from './mutate.js';

/** The objects every request can point at, made before the first batch. */
export interface Fixtures {
  image: string;
  /** A running container: exec, update, rename. */
  running: string;
  /** A created container on the default bridge: network connect / disconnect. */
  idle: string;
  bridge: string;
  overlay: string;
  service: string;
  secret: string;
  config: string;
  nodeId: string;
  joinToken: string;
}

/** Reads a swarm object as it is now: update endpoints want its `?version=` (and swarm update its spec). */
export type Inspect = (path: string) => Promise<{ Version: { Index: number }; Spec: Json }>;

/** One request ready to send (before mutation). */
export interface Prepared {
  method: string;
  path: string;
  query: Record<string, string>;
  body?: Json;
}

/** A write endpoint: how to build a valid request, and which body fields are never mutated. */
export interface WriteEndpoint {
  /** The route as the report names it. */
  route: string;
  prepare(f: Fixtures, p: Prng, n: string, inspect: Inspect): Promise<Prepared>;
  /** Body paths never mutated: valid values there are expensive or destructive (documented per entry). */
  pinned?: string[];
}

const labels = (p: Prng) => ({ 'fz.label': p.word(4), 'com.example.k': 'v' });

export const WRITE_ENDPOINTS: WriteEndpoint[] = [
  {
    route: 'POST /containers/create',
    prepare: async (f, p, n) => ({
      method: 'POST',
      path: '/containers/create',
      query: { name: `fz-c-${n}` },
      body: {
        Image: f.image,
        Cmd: ['sleep', '1'],
        Env: ['A=1'],
        Labels: labels(p),
        WorkingDir: '/',
        User: '',
        Tty: false,
        OpenStdin: false,
        ExposedPorts: { '80/tcp': {} },
        StopSignal: 'SIGTERM',
        StopTimeout: 1,
        HostConfig: {
          NetworkMode: 'none',
          Memory: 64 * 1024 * 1024,
          CpuShares: 512,
          RestartPolicy: { Name: 'no', MaximumRetryCount: 0 },
          Binds: null,
          Tmpfs: { '/run': 'size=1m' },
          Ulimits: [{ Name: 'nofile', Soft: 1024, Hard: 1024 }],
          LogConfig: { Type: 'json-file', Config: {} },
        },
        NetworkingConfig: { EndpointsConfig: {} },
      },
    }),
  },
  {
    route: 'POST /containers/{id}/update',
    prepare: async (f) => ({
      method: 'POST',
      path: `/containers/${f.running}/update`,
      query: {},
      body: {
        CpuShares: 512,
        Memory: 256 * 1024 * 1024,
        MemorySwap: -1,
        PidsLimit: 100,
        RestartPolicy: { Name: 'no', MaximumRetryCount: 0 },
      },
    }),
  },
  {
    route: 'POST /containers/{id}/exec',
    prepare: async (f) => ({
      method: 'POST',
      path: `/containers/${f.running}/exec`,
      query: {},
      body: {
        Cmd: ['true'],
        AttachStdin: false,
        AttachStdout: true,
        AttachStderr: true,
        Tty: false,
        Env: ['A=1'],
        User: '',
        WorkingDir: '/',
        Privileged: false,
        DetachKeys: 'ctrl-p,ctrl-q',
      },
    }),
  },
  {
    route: 'POST /containers/{id}/rename',
    prepare: async (f, _p, n) => ({
      method: 'POST',
      path: `/containers/${f.running}/rename`,
      query: { name: `fz-run-${n}` },
    }),
  },
  {
    route: 'POST /images/{name}/tag',
    prepare: async (f, p) => ({
      method: 'POST',
      path: `/images/${f.image}/tag`,
      query: { repo: `fz/${p.word(5)}`, tag: p.word(3) },
    }),
  },
  {
    route: 'POST /volumes/create',
    prepare: async (_f, p, n) => ({
      method: 'POST',
      path: '/volumes/create',
      query: {},
      body: { Name: `fz-v-${n}`, Driver: 'local', DriverOpts: {}, Labels: labels(p) },
    }),
  },
  {
    route: 'POST /networks/create',
    prepare: async (_f, p, n) => ({
      method: 'POST',
      path: '/networks/create',
      query: {},
      body: p.chance(0.5)
        ? <Json>{
            Name: `fz-n-${n}`,
            CheckDuplicate: true,
            Driver: 'bridge',
            Internal: false,
            Attachable: false,
            EnableIPv6: false,
            Options: { 'com.docker.network.driver.mtu': '1400' },
            Labels: labels(p),
            IPAM: { Driver: 'default', Config: [], Options: {} },
          }
        : <Json>{
            Name: `fz-o-${n}`,
            CheckDuplicate: true,
            Driver: 'overlay',
            Attachable: true,
            Internal: false,
            Labels: labels(p),
            IPAM: { Driver: 'default', Config: [] },
          },
    }),
  },
  {
    route: 'POST /networks/{id}/connect',
    prepare: async (f, p) => ({
      method: 'POST',
      path: `/networks/${f.bridge}/connect`,
      query: {},
      body: { Container: f.idle, EndpointConfig: { Aliases: [p.word(5)], IPAMConfig: {} } },
    }),
  },
  {
    route: 'POST /networks/{id}/disconnect',
    prepare: async (f) => ({
      method: 'POST',
      path: `/networks/${f.bridge}/disconnect`,
      query: {},
      body: { Container: f.idle, Force: false },
    }),
  },
  {
    // The node is in a swarm: every init is 503 "already part of a swarm" (ForceNewCluster=true would restart it).
    route: 'POST /swarm/init',
    pinned: ['ForceNewCluster'],
    prepare: async () => ({
      method: 'POST',
      path: '/swarm/init',
      query: {},
      body: {
        ListenAddr: '0.0.0.0:2377',
        AdvertiseAddr: '127.0.0.1',
        ForceNewCluster: false,
        Spec: { Orchestration: {}, Raft: {}, Dispatcher: {}, CAConfig: {} },
      },
    }),
  },
  {
    route: 'POST /swarm/join',
    prepare: async (f) => ({
      method: 'POST',
      path: '/swarm/join',
      query: {},
      body: {
        ListenAddr: '0.0.0.0:2377',
        AdvertiseAddr: '127.0.0.1',
        RemoteAddrs: ['127.0.0.1:2377'],
        JoinToken: f.joinToken,
      },
    }),
  },
  {
    // A changed ForceRotate starts a root CA rotation: valid, but minutes of work per request.
    route: 'POST /swarm/update',
    pinned: ['CAConfig.ForceRotate'],
    prepare: async (_f, _p, _n, inspect) => {
      const c = await inspect('/swarm');
      return { method: 'POST', path: '/swarm/update', query: { version: String(c.Version.Index) }, body: c.Spec };
    },
  },
  {
    route: 'POST /services/create',
    prepare: async (f, p, n) => ({
      method: 'POST',
      path: '/services/create',
      query: {},
      body: serviceSpec(f, p, `fz-s-${n}`),
    }),
  },
  {
    route: 'POST /services/{id}/update',
    prepare: async (f, p, _n, inspect) => {
      const v = (await inspect(`/services/${f.service}`)).Version.Index;
      return {
        method: 'POST',
        path: `/services/${f.service}/update`,
        query: { version: String(v) },
        body: serviceSpec(f, p, 'fz-svc'),
      };
    },
  },
  {
    // Availability stays "drain" so fuzzed services never start tasks on the only node.
    route: 'POST /nodes/{id}/update',
    prepare: async (f, p, _n, inspect) => {
      const v = (await inspect(`/nodes/${f.nodeId}`)).Version.Index;
      return {
        method: 'POST',
        path: `/nodes/${f.nodeId}/update`,
        query: { version: String(v) },
        body: { Role: 'manager', Availability: 'drain', Labels: labels(p), Name: '' },
      };
    },
  },
  {
    route: 'POST /secrets/create',
    prepare: async (_f, p, n) => ({
      method: 'POST',
      path: '/secrets/create',
      query: {},
      body: { Name: `fz-sec-${n}`, Data: Buffer.from(p.word(12)).toString('base64'), Labels: labels(p) },
    }),
  },
  {
    route: 'POST /secrets/{id}/update',
    prepare: async (f, p, _n, inspect) => {
      const v = (await inspect(`/secrets/${f.secret}`)).Version.Index;
      return {
        method: 'POST',
        path: `/secrets/${f.secret}/update`,
        query: { version: String(v) },
        body: { Name: 'fz-secret', Labels: labels(p) },
      };
    },
  },
  {
    route: 'POST /configs/create',
    prepare: async (_f, p, n) => ({
      method: 'POST',
      path: '/configs/create',
      query: {},
      body: {
        Name: `fz-cfg-${n}`,
        Data: Buffer.from(p.word(12)).toString('base64'),
        Labels: labels(p),
        Templating: { Name: 'golang' },
      },
    }),
  },
  {
    route: 'POST /configs/{id}/update',
    prepare: async (f, p, _n, inspect) => {
      const v = (await inspect(`/configs/${f.config}`)).Version.Index;
      return {
        method: 'POST',
        path: `/configs/${f.config}/update`,
        query: { version: String(v) },
        body: { Name: 'fz-config', Labels: labels(p) },
      };
    },
  },
];

/** A global service: on the drained node it never starts a task, so thousands of them stay cheap. */
export function serviceSpec(f: Fixtures, p: Prng, name: string): Json {
  return {
    Name: name,
    Labels: labels(p),
    TaskTemplate: {
      ContainerSpec: {
        Image: f.image,
        Args: ['sleep', '300'],
        Env: ['A=1'],
        Labels: {},
        StopGracePeriod: 1_000_000_000,
        Mounts: [],
        Hosts: [],
        DNSConfig: {},
      },
      Resources: { Limits: { NanoCPUs: 500_000_000, MemoryBytes: 64 * 1024 * 1024 }, Reservations: {} },
      RestartPolicy: { Condition: 'none', Delay: 1_000_000_000, MaxAttempts: 1 },
      Placement: { Constraints: ['node.role==manager'] },
      Networks: [{ Target: f.overlay, Aliases: [p.word(4)] }],
      ForceUpdate: 0,
    },
    Mode: { Global: {} },
    UpdateConfig: { Parallelism: 1, Delay: 0, FailureAction: 'pause', Order: 'stop-first' },
    EndpointSpec: { Mode: 'vip', Ports: [{ Protocol: 'tcp', TargetPort: 80, PublishMode: 'ingress' }] },
  };
}

/** Every list endpoint: after each batch all must answer 200 with JSON. */
export const LIST_ENDPOINTS = [
  '/containers/json?all=1',
  '/images/json',
  '/volumes',
  '/networks',
  '/services?status=true',
  '/nodes',
  '/tasks',
  '/secrets',
  '/configs',
  '/system/df',
  '/info',
];

/** Read endpoints whose query strings the fuzzer garbles (besides the write endpoints'). */
export const QUERY_ENDPOINTS: {
  route: string;
  method: string;
  path: (f: Fixtures) => string;
  query: Record<string, string>;
}[] = [
  { route: 'GET /containers/json', method: 'GET', path: () => '/containers/json', query: { all: '1', limit: '5' } },
  { route: 'GET /images/json', method: 'GET', path: () => '/images/json', query: { all: '0' } },
  { route: 'GET /volumes', method: 'GET', path: () => '/volumes', query: {} },
  { route: 'GET /networks', method: 'GET', path: () => '/networks', query: {} },
  { route: 'GET /services', method: 'GET', path: () => '/services', query: { status: 'true' } },
  { route: 'GET /nodes', method: 'GET', path: () => '/nodes', query: {} },
  { route: 'GET /tasks', method: 'GET', path: () => '/tasks', query: {} },
  { route: 'GET /secrets', method: 'GET', path: () => '/secrets', query: {} },
  { route: 'GET /configs', method: 'GET', path: () => '/configs', query: {} },
  { route: 'GET /system/df', method: 'GET', path: () => '/system/df', query: {} },
  { route: 'GET /info', method: 'GET', path: () => '/info', query: {} },
  { route: 'GET /events', method: 'GET', path: () => '/events', query: { since: '1', until: '2' } },
  {
    route: 'GET /containers/{id}/json',
    method: 'GET',
    path: (f) => `/containers/${f.running}/json`,
    query: { size: '1' },
  },
  {
    route: 'GET /containers/{id}/logs',
    method: 'GET',
    path: (f) => `/containers/${f.running}/logs`,
    query: { stdout: '1', tail: '5' },
  },
  { route: 'GET /containers/{id}/top', method: 'GET', path: (f) => `/containers/${f.running}/top`, query: {} },
  {
    route: 'GET /services/{id}',
    method: 'GET',
    path: (f) => `/services/${f.service}`,
    query: { insertDefaults: 'true' },
  },
  { route: 'GET /networks/{id}', method: 'GET', path: (f) => `/networks/${f.bridge}`, query: { verbose: 'true' } },
  {
    route: 'POST /containers/prune',
    method: 'POST',
    path: () => '/containers/prune',
    query: { filters: '{"label":["fz.none"]}' },
  },
  {
    route: 'POST /images/prune',
    method: 'POST',
    path: () => '/images/prune',
    query: { filters: '{"dangling":["true"]}' },
  },
  {
    route: 'POST /volumes/prune',
    method: 'POST',
    path: () => '/volumes/prune',
    query: { filters: '{"label":["fz.none"]}' },
  },
  {
    route: 'POST /networks/prune',
    method: 'POST',
    path: () => '/networks/prune',
    query: { filters: '{"label":["fz.none"]}' },
  },
  {
    route: 'POST /containers/{id}/kill',
    method: 'POST',
    path: (f) => `/containers/${f.idle}/kill`,
    query: { signal: 'SIGTERM' },
  },
  { route: 'POST /containers/{id}/stop', method: 'POST', path: (f) => `/containers/${f.idle}/stop`, query: { t: '1' } },
  {
    route: 'POST /containers/{id}/resize',
    method: 'POST',
    path: (f) => `/containers/${f.running}/resize`,
    query: { h: '24', w: '80' },
  },
  {
    route: 'DELETE /containers/{id}',
    method: 'DELETE',
    path: () => '/containers/fz-absent',
    query: { force: '1', v: '1' },
  },
  { route: 'DELETE /images/{name}', method: 'DELETE', path: () => '/images/fz-absent:latest', query: { force: '0' } },
];
