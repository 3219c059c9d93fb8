/**
 * Swarm objects in the Engine API's shapes (moby api/types/swarm), as stored in etcd and as
 * the API returns them. Only the fields shoal uses are typed; unknown fields sent by clients
 * are kept as they came (the index signatures), so `service inspect` shows what was created.
 */

export interface Version {
  Index: number;
}

export interface Meta {
  ID: string;
  Version: Version;
  CreatedAt: string;
  UpdatedAt: string;
}

export interface Annotations {
  Name?: string;
  Labels?: Record<string, string>;
}

// ---- nodes ----
export type NodeRole = 'worker' | 'manager';
export type NodeAvailability = 'active' | 'pause' | 'drain';
export type NodeState = 'unknown' | 'down' | 'ready' | 'disconnected';
export type Reachability = 'unknown' | 'unreachable' | 'reachable';

export interface NodeSpec extends Annotations {
  Role: NodeRole;
  Availability: NodeAvailability;
}

export interface NodeDescription {
  Hostname: string;
  Platform: { Architecture: string; OS: string };
  Resources: { NanoCPUs: number; MemoryBytes: number };
  Engine: { EngineVersion: string; Labels?: Record<string, string>; Plugins?: { Type: string; Name: string }[] };
  TLSInfo?: TLSInfo;
}

export interface TLSInfo {
  TrustRoot: string;
  CertIssuerSubject: string;
  CertIssuerPublicKey: string;
}

export interface Node extends Meta {
  Spec: NodeSpec;
  Description?: NodeDescription;
  Status: { State: NodeState; Message?: string; Addr?: string };
  ManagerStatus?: { Leader?: boolean; Reachability: Reachability; Addr: string };
  /** Addresses the allocator gave this node on swarm networks (its routing-mesh address on ingress). */
  Attachments?: NetworkAttachment[];
  /** The node's WireGuard tunnel for encrypted overlays, as the node last reported it (not in Docker). */
  Tunnel?: NodeTunnel;
}

/** Where a node serves the blobs of its images to the other nodes (mutual TLS), and which images it has. */
export interface NodeImageShare {
  /** TCP port of the node's image server, on its swarm address. */
  Port: number;
  Images: NodeImage[];
  /** Public images it is fetching from peers now: it serves the layer blobs it already has. */
  Fetching?: string[];
}

/**
 * The images one node holds and serves, as it last reported them (ID = the node's ID). Its own
 * store object, not a field of the Node: a report (after every pull or load) must not move the
 * node's Version under a client's read-modify-write of the node. Not in Docker.
 */
export interface NodeImages extends Meta, NodeImageShare {}

/** One local image of a node: its ID (the config digest) and the full references naming it. */
export interface NodeImage {
  Id: string;
  /** `docker.io/library/name:tag`, `host/name@sha256:…` */
  Refs: string[];
  /** Pulled with registry credentials: peers get it only for a task of theirs that was given credentials too. */
  Private?: boolean;
}

/** The port a node's image server listens on (another one when taken, reported with the images). */
export const IMAGE_SHARE_PORT = 2378;

/**
 * What a node tells the managers about its tunnel for encrypted overlays: the public half of
 * a key it made itself (the private half never leaves it), its tunnel address, and whether it
 * can encrypt at all. Peers configure it from here; a removed node's entry goes with it.
 */
export interface NodeTunnel {
  /** WireGuard public key (base64 of 32 bytes); '' when the node cannot encrypt. */
  PublicKey: string;
  /** The node's address inside the tunnel (VXLAN of encrypted networks runs between these). */
  Address: string;
  /** UDP port WireGuard listens on at the node's underlay address. */
  Port: number;
  /** The swarm's key epoch this key was made for (Cluster.OverlayKeys.Epoch). */
  Epoch: number;
  State: 'ready' | 'down' | 'unavailable';
  /** kernel WireGuard or wireguard-go. */
  Mode?: 'kernel' | 'userspace';
  /** Why the tunnel is not ready. */
  Message?: string;
}

// ---- services ----
export interface Mount {
  /** bind, volume and tmpfs run here; npipe and cluster reach the agent, which rejects the task. */
  Type: 'bind' | 'volume' | 'tmpfs' | 'npipe' | 'cluster';
  Source?: string;
  Target: string;
  ReadOnly?: boolean;
  Consistency?: string;
  BindOptions?: { Propagation?: string; NonRecursive?: boolean; CreateMountpoint?: boolean };
  VolumeOptions?: {
    NoCopy?: boolean;
    Labels?: Record<string, string>;
    DriverConfig?: { Name?: string; Options?: Record<string, string> };
    Subpath?: string;
  };
  TmpfsOptions?: { SizeBytes?: number; Mode?: number; Options?: string[][] };
}

export interface ContainerSpec {
  Image: string;
  Labels?: Record<string, string>;
  Command?: string[];
  Args?: string[];
  Hostname?: string;
  Env?: string[];
  Dir?: string;
  User?: string;
  Mounts?: Mount[];
  StopSignal?: string;
  StopGracePeriod?: number;
  Init?: boolean;
  Secrets?: SecretReference[];
  Configs?: ConfigReference[];
  /**
   * Internal (swarmkit ContainerSpec.PullOptions): the `X-Registry-Auth` given with
   * `--with-registry-auth`, sealed with the swarm's DEK in the store and opened only for the
   * agent of a node running the task. Never shown by the API.
   */
  PullOptions?: { RegistryAuth?: string };
  [extra: string]: unknown;
}

/** Where a secret or config appears in a task's container (swagger SecretReference / ConfigReference File). */
export interface FileTarget {
  Name: string;
  UID?: string;
  GID?: string;
  /** File mode as a number (the CLI sends 0444 = 292). */
  Mode?: number;
}

export interface SecretReference {
  SecretID: string;
  SecretName: string;
  File?: FileTarget;
}

export interface ConfigReference {
  ConfigID: string;
  ConfigName: string;
  File?: FileTarget;
  Runtime?: Record<string, never>;
}

export interface ResourceSet {
  NanoCPUs?: number;
  MemoryBytes?: number;
}

export interface RestartPolicy {
  Condition?: 'none' | 'on-failure' | 'any';
  Delay?: number;
  MaxAttempts?: number;
  Window?: number;
}

export interface Placement {
  Constraints?: string[];
  Preferences?: { Spread: { SpreadDescriptor: string } }[];
  MaxReplicas?: number;
  Platforms?: { Architecture?: string; OS?: string }[];
}

export interface NetworkAttachmentConfig {
  Target: string;
  Aliases?: string[];
  DriverOpts?: Record<string, string>;
}

export interface TaskSpec {
  ContainerSpec?: ContainerSpec;
  Resources?: { Limits?: ResourceSet; Reservations?: ResourceSet };
  RestartPolicy?: RestartPolicy;
  Placement?: Placement;
  Networks?: NetworkAttachmentConfig[];
  LogDriver?: { Name: string; Options?: Record<string, string> };
  ForceUpdate?: number;
  Runtime?: string;
  [extra: string]: unknown;
}

export interface PortConfig {
  Name?: string;
  Protocol?: 'tcp' | 'udp' | 'sctp';
  TargetPort: number;
  PublishedPort?: number;
  PublishMode?: 'ingress' | 'host';
}

export interface EndpointSpec {
  Mode?: 'vip' | 'dnsrr';
  Ports?: PortConfig[];
}

export interface ServiceMode {
  Replicated?: { Replicas?: number };
  Global?: Record<string, never>;
  ReplicatedJob?: { MaxConcurrent?: number; TotalCompletions?: number };
  GlobalJob?: Record<string, never>;
}

export interface UpdateConfig {
  Parallelism?: number;
  Delay?: number;
  FailureAction?: 'pause' | 'continue' | 'rollback';
  Monitor?: number;
  MaxFailureRatio?: number;
  Order?: 'stop-first' | 'start-first';
}

export interface ServiceSpec extends Annotations {
  TaskTemplate: TaskSpec;
  Mode?: ServiceMode;
  UpdateConfig?: UpdateConfig;
  RollbackConfig?: UpdateConfig;
  Networks?: NetworkAttachmentConfig[];
  EndpointSpec?: EndpointSpec;
  [extra: string]: unknown;
}

export interface VirtualIP {
  NetworkID: string;
  Addr: string; // CIDR form, "10.0.0.5/24"
}

export interface Endpoint {
  Spec: EndpointSpec;
  Ports?: PortConfig[];
  VirtualIPs?: VirtualIP[];
}

export interface Service extends Meta {
  Spec: ServiceSpec;
  PreviousSpec?: ServiceSpec;
  Endpoint?: Endpoint;
  UpdateStatus?: { State: string; StartedAt?: string; CompletedAt?: string; Message?: string };
  /** Internal: incremented on every spec change so tasks can tell which spec made them. */
  SpecVersion?: Version;
  /** Jobs only: which run of the job is current (every update starts a new one). */
  JobStatus?: { JobIteration: Version; LastExecution?: string };
}

// ---- tasks ----
export const TASK_STATES = [
  'new',
  'pending',
  'assigned',
  'accepted',
  'preparing',
  'ready',
  'starting',
  'running',
  'complete',
  'shutdown',
  'failed',
  'rejected',
  'remove',
  'orphaned',
] as const;
export type TaskState = (typeof TASK_STATES)[number];

/** Order of task states: observed state only moves forward. */
export function taskStateRank(s: TaskState): number {
  return TASK_STATES.indexOf(s);
}

export interface TaskStatus {
  Timestamp: string;
  State: TaskState;
  Message: string;
  Err?: string;
  ContainerStatus?: { ContainerID?: string; PID?: number; ExitCode?: number };
  PortStatus?: { Ports?: PortConfig[] };
}

export interface NetworkAttachment {
  Network: Network;
  Addresses: string[]; // CIDR form
}

export interface Task extends Meta {
  Name?: string;
  Labels?: Record<string, string>;
  Spec: TaskSpec;
  ServiceID: string;
  /** The service's name and labels when the task was made: agents name containers after them. */
  ServiceAnnotations?: Annotations;
  Slot?: number;
  NodeID?: string;
  Status: TaskStatus;
  DesiredState: TaskState;
  NetworksAttachments?: NetworkAttachment[];
  /** The service's SpecVersion this task was made from. */
  SpecVersion?: Version;
  /** Jobs only: the run of the job this task belongs to. */
  JobIteration?: Version;
  /** The service's endpoint (allocated ports) when the task was allocated: agents publish host-mode ports from it. */
  Endpoint?: Endpoint;
}

// ---- networks ----
export interface IPAMConfig {
  Subnet: string;
  Gateway?: string;
  IPRange?: string;
}

export interface NetworkSpec extends Annotations {
  DriverConfiguration?: { Name: string; Options?: Record<string, string> };
  IPv6Enabled?: boolean;
  Internal?: boolean;
  Attachable?: boolean;
  Ingress?: boolean;
  IPAMOptions?: { Driver?: { Name: string }; Configs?: IPAMConfig[] };
  Scope?: string;
}

export interface Network extends Meta {
  Spec: NetworkSpec;
  DriverState?: { Name: string; Options?: Record<string, string> }; // Options["com.docker.network.driver.overlay.vxlanid_list"]
  IPAMOptions?: { Driver?: { Name: string }; Configs?: IPAMConfig[] };
}

// ---- secrets and configs ----
export interface SecretSpec extends Annotations {
  /**
   * Base64 of the secret's bytes. Stored sealed with the swarm's data-encryption key
   * (manager/secrets/seal.ts); never shown by the API.
   */
  Data?: string;
  Driver?: { Name: string; Options?: Record<string, string> };
  Templating?: { Name: string; Options?: Record<string, string> };
}

export interface Secret extends Meta {
  Spec: SecretSpec;
}

export interface ConfigSpec extends Annotations {
  /** Base64 of the config's bytes (shown by inspect). */
  Data?: string;
  Templating?: { Name: string; Options?: Record<string, string> };
}

export interface Config extends Meta {
  Spec: ConfigSpec;
}

// ---- cluster ----
export interface ClusterSpec extends Annotations {
  Orchestration?: { TaskHistoryRetentionLimit?: number };
  Raft?: {
    SnapshotInterval?: number;
    KeepOldSnapshots?: number;
    LogEntriesForSlowFollowers?: number;
    ElectionTick?: number;
    HeartbeatTick?: number;
  };
  Dispatcher?: { HeartbeatPeriod?: number };
  CAConfig?: {
    NodeCertExpiry?: number;
    ForceRotate?: number;
    ExternalCAs?: unknown[];
    SigningCACert?: string;
    SigningCAKey?: string;
  };
  TaskDefaults?: Record<string, unknown>;
  EncryptionConfig?: { AutoLockManagers?: boolean };
}

export interface Cluster extends Meta {
  Spec: ClusterSpec;
  TLSInfo: TLSInfo;
  RootRotationInProgress: boolean;
  DefaultAddrPool: string[];
  SubnetSize: number;
  DataPathPort: number;
  JoinTokens: { Worker: string; Manager: string };
  /** Encrypted overlays: nodes make new tunnel keys whenever Epoch grows (on a schedule and when a node is removed). Not in Docker. */
  OverlayKeys?: { Epoch: number; RotatedAt: string };
}

export interface KindMap {
  cluster: Cluster;
  nodes: Node;
  services: Service;
  tasks: Task;
  networks: Network;
  secrets: Secret;
  configs: Config;
  nodeImages: NodeImages;
}
export type Kind = keyof KindMap;

/** One service in `network inspect --verbose` (Docker's ServiceInfo). */
export interface VerboseService {
  VIP: string;
  Ports: string[];
  LocalLBIndex: number;
  Tasks: { Name: string; EndpointID: string; EndpointIP: string; Info: Record<string, string> }[];
}
