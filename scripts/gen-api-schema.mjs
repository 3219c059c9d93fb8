#!/usr/bin/env node
// Generates src/api/decode/schema.generated.ts: the request body types of the Engine API, from
// Docker's swagger.yaml (API 1.41, moby/moby tag v20.10.x, file api/swagger.yaml), plus the
// Go facts the swagger does not carry (what encoding/json acts on): unsigned and sized ints,
// strslice.StrSlice, []byte as base64, Go type names for error messages, and the few fields
// Go's types have that the swagger omits.
//
// Usage (no network: give it a copy of the file):
//   git -C <moby checkout> show v20.10.27:api/swagger.yaml > /tmp/swagger-1.41.yaml
//   node scripts/gen-api-schema.mjs /tmp/swagger-1.41.yaml
import fs from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';

const src = process.argv[2];
if (!src) {
  console.error('usage: node scripts/gen-api-schema.mjs <swagger.yaml of API 1.41>');
  process.exit(2);
}
const swagger = parse(fixQuotedContinuations(fs.readFileSync(src, 'utf8')));
if (swagger.info?.version !== '1.41') console.error(`warning: swagger is API ${swagger.info?.version}, expected 1.41`);
const definitions = swagger.definitions;

/**
 * The 1.41 swagger has a few double-quoted scalars whose continuation lines are not indented
 * past their key (lenient YAML parsers accept them, the `yaml` package does not): indent them.
 */
function fixQuotedContinuations(text) {
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const m = /^(\s*)[\w$-]+: "((?:[^"\\]|\\.)*)$/.exec(lines[i]);
    if (!m) continue;
    const indent = m[1].length;
    for (let j = i + 1; j < lines.length; j++) {
      if (lines[j].length - lines[j].trimStart().length <= indent)
        lines[j] = ' '.repeat(indent + 2) + lines[j].trimStart();
      if (/^(?:[^"\\]|\\.)*"/.test(lines[j].trimStart())) {
        i = j;
        break;
      }
    }
  }
  return lines.join('\n');
}

/** Request bodies: our name → where the swagger defines it, and the Go type dockerd decodes into. */
const ROOTS = {
  ContainerCreate: { path: ['/containers/create', 'post'], go: 'runconfig.ContainerConfigWrapper' },
  ContainerUpdate: { path: ['/containers/{id}/update', 'post'], go: 'container.UpdateConfig' },
  ContainerConfig: { def: 'ContainerConfig' },
  ExecConfig: { path: ['/containers/{id}/exec', 'post'], go: 'types.ExecConfig' },
  ExecStartCheck: { path: ['/exec/{id}/start', 'post'], go: 'types.ExecStartCheck' },
  VolumeCreateBody: { path: ['/volumes/create', 'post'], go: 'volume.VolumeCreateBody' },
  NetworkCreateRequest: { path: ['/networks/create', 'post'], go: 'types.NetworkCreateRequest' },
  NetworkConnect: { path: ['/networks/{id}/connect', 'post'], go: 'types.NetworkConnect' },
  NetworkDisconnect: { path: ['/networks/{id}/disconnect', 'post'], go: 'types.NetworkDisconnect' },
  SwarmInitRequest: { path: ['/swarm/init', 'post'], go: 'swarm.InitRequest' },
  SwarmJoinRequest: { path: ['/swarm/join', 'post'], go: 'swarm.JoinRequest' },
  SwarmUnlockRequest: { path: ['/swarm/unlock', 'post'], go: 'swarm.UnlockRequest' },
  SwarmSpec: { def: 'SwarmSpec' },
  ServiceSpec: { def: 'ServiceSpec' },
  NodeSpec: { def: 'NodeSpec' },
  SecretSpec: { def: 'SecretSpec' },
  ConfigSpec: { def: 'ConfigSpec' },
  AuthConfig: { def: 'AuthConfig' },
};

/** Go type of each struct, by definition name or by path below one (`Def.Field`, `[]` = element). */
const GO_NAMES = {
  ContainerConfig: 'container.Config',
  HostConfig: 'container.HostConfig',
  RestartPolicy: 'container.RestartPolicy',
  NetworkingConfig: 'network.NetworkingConfig',
  EndpointSettings: 'network.EndpointSettings',
  EndpointIPAMConfig: 'network.EndpointIPAMConfig',
  IPAM: 'network.IPAM',
  HealthConfig: 'container.HealthConfig',
  Mount: 'mount.Mount',
  PortBinding: 'nat.PortBinding',
  DeviceMapping: 'container.DeviceMapping',
  DeviceRequest: 'container.DeviceRequest',
  ThrottleDevice: 'blkiodev.ThrottleDevice',
  TaskSpec: 'swarm.TaskSpec',
  ServiceSpec: 'swarm.ServiceSpec',
  NodeSpec: 'swarm.NodeSpec',
  SwarmSpec: 'swarm.Spec',
  SecretSpec: 'swarm.SecretSpec',
  ConfigSpec: 'swarm.ConfigSpec',
  Driver: 'swarm.Driver',
  EndpointSpec: 'swarm.EndpointSpec',
  EndpointPortConfig: 'swarm.PortConfig',
  NetworkAttachmentConfig: 'swarm.NetworkAttachmentConfig',
  Limit: 'swarm.Limit',
  ResourceObject: 'swarm.Resources',
  Platform: 'swarm.Platform',
  AuthConfig: 'types.AuthConfig',
  'GenericResources[]': 'swarm.GenericResource',
  'GenericResources[].NamedResourceSpec': 'swarm.NamedGenericResource',
  'GenericResources[].DiscreteResourceSpec': 'swarm.DiscreteGenericResource',
  'HostConfig.LogConfig': 'container.LogConfig',
  'Resources.BlkioWeightDevice[]': 'blkiodev.WeightDevice',
  'Resources.Ulimits[]': 'units.Ulimit',
  'ServiceSpec.Mode': 'swarm.ServiceMode',
  'ServiceSpec.Mode.Replicated': 'swarm.ReplicatedService',
  'ServiceSpec.Mode.Global': 'swarm.GlobalService',
  'ServiceSpec.Mode.ReplicatedJob': 'swarm.ReplicatedJob',
  'ServiceSpec.Mode.GlobalJob': 'swarm.GlobalJob',
  'ServiceSpec.UpdateConfig': 'swarm.UpdateConfig',
  'ServiceSpec.RollbackConfig': 'swarm.UpdateConfig',
  'TaskSpec.PluginSpec': 'runtime.PluginSpec',
  'TaskSpec.PluginSpec.PluginPrivilege[]': 'runtime.PluginPrivilege',
  'TaskSpec.ContainerSpec': 'swarm.ContainerSpec',
  'TaskSpec.ContainerSpec.Privileges': 'swarm.Privileges',
  'TaskSpec.ContainerSpec.Privileges.CredentialSpec': 'swarm.CredentialSpec',
  'TaskSpec.ContainerSpec.Privileges.SELinuxContext': 'swarm.SELinuxContext',
  'TaskSpec.ContainerSpec.DNSConfig': 'swarm.DNSConfig',
  'TaskSpec.ContainerSpec.Secrets[]': 'swarm.SecretReference',
  'TaskSpec.ContainerSpec.Secrets[].File': 'swarm.SecretReferenceFileTarget',
  'TaskSpec.ContainerSpec.Configs[]': 'swarm.ConfigReference',
  'TaskSpec.ContainerSpec.Configs[].File': 'swarm.ConfigReferenceFileTarget',
  'TaskSpec.ContainerSpec.Configs[].Runtime': 'swarm.ConfigReferenceRuntimeTarget',
  'TaskSpec.ContainerSpec.Ulimits[]': 'units.Ulimit',
  'TaskSpec.NetworkAttachmentSpec': 'swarm.NetworkAttachmentSpec',
  'TaskSpec.Resources': 'swarm.ResourceRequirements',
  'TaskSpec.RestartPolicy': 'swarm.RestartPolicy',
  'TaskSpec.Placement': 'swarm.Placement',
  'TaskSpec.Placement.Preferences[]': 'swarm.PlacementPreference',
  'TaskSpec.Placement.Preferences[].Spread': 'swarm.SpreadOver',
  'TaskSpec.LogDriver': 'swarm.Driver',
  'SwarmSpec.Orchestration': 'swarm.OrchestrationConfig',
  'SwarmSpec.Raft': 'swarm.RaftConfig',
  'SwarmSpec.Dispatcher': 'swarm.DispatcherConfig',
  'SwarmSpec.CAConfig': 'swarm.CAConfig',
  'SwarmSpec.CAConfig.ExternalCAs[]': 'swarm.ExternalCA',
  'SwarmSpec.EncryptionConfig': 'swarm.EncryptionConfig',
  'SwarmSpec.TaskDefaults': 'swarm.TaskDefaults',
  'SwarmSpec.TaskDefaults.LogDriver': 'swarm.Driver',
  'Mount.BindOptions': 'mount.BindOptions',
  'Mount.VolumeOptions': 'mount.VolumeOptions',
  'Mount.VolumeOptions.DriverConfig': 'mount.Driver',
  'Mount.TmpfsOptions': 'mount.TmpfsOptions',
  'ContainerConfig.ExposedPorts{}': 'struct {}',
  'ContainerConfig.Volumes{}': 'struct {}',
};

const int = (go, name) => ({ k: 'int', go, ...(name ? { name } : {}) });
const duration = int('int64', 'time.Duration');
const fileMode = int('uint32', 'os.FileMode');
const str = (go) => ({ k: 'string', ...(go ? { go } : {}) });
const obj = (go, fields) => ({ k: 'struct', go, fields });
const slice = (of) => ({ k: 'slice', of });
const map = (of) => ({ k: 'map', of });
const STRSLICE = { k: 'strslice' };

/** Where Go's type is not what the swagger says (api/types of moby v20.10). */
const TYPES = {
  'ContainerConfig.Cmd': STRSLICE,
  'ContainerConfig.Entrypoint': STRSLICE,
  'ContainerConfig.Shell': STRSLICE,
  'HostConfig.CapAdd': STRSLICE,
  'HostConfig.CapDrop': STRSLICE,
  'ContainerConfig.StopTimeout': int('int'),
  'HostConfig.NetworkMode': str('container.NetworkMode'),
  'HostConfig.IpcMode': str('container.IpcMode'),
  'HostConfig.PidMode': str('container.PidMode'),
  'HostConfig.UTSMode': str('container.UTSMode'),
  'HostConfig.UsernsMode': str('container.UsernsMode'),
  'HostConfig.CgroupnsMode': str('container.CgroupnsMode'),
  'HostConfig.Cgroup': str('container.CgroupSpec'),
  'HostConfig.Isolation': str('container.Isolation'),
  'HostConfig.OomScoreAdj': int('int'),
  'HostConfig.ShmSize': int('int64'),
  'HostConfig.ConsoleSize': slice(int('uint')),
  'Resources.CpuShares': int('int64'),
  'Resources.BlkioWeight': int('uint16'),
  'Resources.BlkioWeightDevice[].Weight': int('uint16'),
  'Resources.Ulimits[].Soft': int('int64'),
  'Resources.Ulimits[].Hard': int('int64'),
  'RestartPolicy.MaximumRetryCount': int('int'),
  'DeviceRequest.Count': int('int'),
  'EndpointSettings.IPPrefixLen': int('int'),
  'EndpointSettings.GlobalIPv6PrefixLen': int('int'),
  'IPAM.Config[]': obj('network.IPAMConfig', {
    Subnet: str(),
    IPRange: str(),
    Gateway: str(),
    AuxiliaryAddresses: map(str()),
  }),
  'HealthConfig.Interval': duration,
  'HealthConfig.Timeout': duration,
  'HealthConfig.StartPeriod': duration,
  'HealthConfig.Retries': int('int'),
  'Mount.Type': str('mount.Type'),
  'Mount.Consistency': str('mount.Consistency'),
  'Mount.BindOptions.Propagation': str('mount.Propagation'),
  'Mount.TmpfsOptions.Mode': fileMode,
  'ServiceSpec.Mode.Replicated.Replicas': int('uint64'),
  'ServiceSpec.Mode.ReplicatedJob.MaxConcurrent': int('uint64'),
  'ServiceSpec.Mode.ReplicatedJob.TotalCompletions': int('uint64'),
  'ServiceSpec.UpdateConfig.Parallelism': int('uint64'),
  'ServiceSpec.UpdateConfig.Delay': duration,
  'ServiceSpec.UpdateConfig.Monitor': duration,
  'ServiceSpec.UpdateConfig.MaxFailureRatio': { k: 'float', go: 'float32' },
  'ServiceSpec.RollbackConfig.Parallelism': int('uint64'),
  'ServiceSpec.RollbackConfig.Delay': duration,
  'ServiceSpec.RollbackConfig.Monitor': duration,
  'ServiceSpec.RollbackConfig.MaxFailureRatio': { k: 'float', go: 'float32' },
  'TaskSpec.ForceUpdate': int('uint64'),
  'TaskSpec.Runtime': str('swarm.RuntimeType'),
  'TaskSpec.RestartPolicy.Condition': str('swarm.RestartPolicyCondition'),
  'TaskSpec.RestartPolicy.Delay': duration,
  'TaskSpec.RestartPolicy.MaxAttempts': int('uint64'),
  'TaskSpec.RestartPolicy.Window': duration,
  'TaskSpec.Placement.MaxReplicas': int('uint64'),
  'TaskSpec.ContainerSpec.StopGracePeriod': duration,
  'TaskSpec.ContainerSpec.Secrets[].File.Mode': fileMode,
  'TaskSpec.ContainerSpec.Configs[].File.Mode': fileMode,
  'TaskSpec.ContainerSpec.Isolation': str('container.Isolation'),
  'TaskSpec.ContainerSpec.Ulimits[].Soft': int('int64'),
  'TaskSpec.ContainerSpec.Ulimits[].Hard': int('int64'),
  'EndpointPortConfig.TargetPort': int('uint32'),
  'EndpointPortConfig.PublishedPort': int('uint32'),
  'EndpointPortConfig.Protocol': str('swarm.PortConfigProtocol'),
  'EndpointPortConfig.PublishMode': str('swarm.PortConfigPublishMode'),
  'EndpointSpec.Mode': str('swarm.ResolutionMode'),
  'NodeSpec.Role': str('swarm.NodeRole'),
  'NodeSpec.Availability': str('swarm.NodeAvailability'),
  'SwarmSpec.Raft.ElectionTick': int('int'),
  'SwarmSpec.Raft.HeartbeatTick': int('int'),
  'SwarmSpec.Dispatcher.HeartbeatPeriod': duration,
  'SwarmSpec.CAConfig.NodeCertExpiry': duration,
  'SwarmSpec.CAConfig.ExternalCAs[].Protocol': str('swarm.ExternalCAProtocol'),
  'SecretSpec.Data': { k: 'bytes' },
  'ConfigSpec.Data': { k: 'bytes' },
  'GenericResources[].DiscreteResourceSpec.Value': int('int64'),
};

/** Fields Go's types have that the 1.41 swagger does not list (and newer ones shoal acts on). */
const EXTRA = {
  ExecConfig: { Detach: { k: 'bool' } },
  NetworkCreateRequest: {
    Scope: str(),
    ConfigOnly: { k: 'bool' },
    ConfigFrom: obj('network.ConfigReference', { Network: str() }),
  },
  SwarmInitRequest: { AutoLockManagers: { k: 'bool' }, Availability: str('swarm.NodeAvailability') },
  SwarmJoinRequest: { Availability: str('swarm.NodeAvailability') },
  AuthConfig: { auth: str(), identitytoken: str(), registrytoken: str() },
  'Mount.BindOptions': { CreateMountpoint: { k: 'bool' } },
  'Mount.VolumeOptions': { Subpath: str() },
  'Mount.TmpfsOptions': { Options: slice(slice(str())) },
};

/** Go's field name where the swagger spells it differently (swarm.ContainerSpec.Healthcheck). */
const RENAME = { 'TaskSpec.ContainerSpec.HealthCheck': 'Healthcheck' };

const defs = {};
const pending = [];

function goName(p) {
  return (
    GO_NAMES[p] ??
    `${p
      .replace(/\[\]|\{\}/g, '')
      .split('.')
      .pop()}`
  );
}

function ref(name) {
  if (!(name in defs) && !pending.includes(name)) pending.push(name);
  return { k: 'ref', name };
}

/** The fields of an object schema (allOf parts merged, embedded definitions flattened). */
function fieldsOf(s, p) {
  const out = {};
  if (s.$ref) {
    const name = s.$ref.split('/').pop();
    return fieldsOf(definitions[name], name);
  }
  for (const part of s.allOf ?? []) Object.assign(out, fieldsOf(part, part.$ref ? part.$ref.split('/').pop() : p));
  for (const [k, v] of Object.entries(s.properties ?? {})) {
    const fp = `${p}.${k}`;
    out[RENAME[fp] ?? k] = convert(v, fp);
  }
  for (const [k, v] of Object.entries(EXTRA[p] ?? {})) out[k] = v;
  return out;
}

function convert(s, p) {
  if (TYPES[p]) return TYPES[p];
  if (s.$ref) {
    const name = s.$ref.split('/').pop();
    return ref(name);
  }
  if (s.allOf) return { k: 'struct', go: goName(p), fields: fieldsOf(s, p) };
  const t = s.type;
  if (t === 'object' || s.properties || s.additionalProperties) {
    if (s.properties || EXTRA[p]) return { k: 'struct', go: goName(p), fields: fieldsOf(s, p) };
    const ap = s.additionalProperties;
    if (ap === true || (ap && typeof ap === 'object' && Object.keys(ap).length === 0)) return map({ k: 'any' });
    if (ap && typeof ap === 'object') return map(convert(ap, `${p}{}`));
    return { k: 'empty', go: goName(p) };
  }
  if (t === 'array') return slice(convert(s.items ?? {}, `${p}[]`));
  if (t === 'string') return s.format === 'binary' ? { k: 'bytes' } : str();
  if (t === 'boolean') return { k: 'bool' };
  if (t === 'integer')
    return int(
      { int64: 'int64', uint64: 'uint64', uint32: 'uint32', uint16: 'uint16', uint8: 'uint8', int32: 'int32' }[
        s.format
      ] ?? 'int',
    );
  if (t === 'number') return { k: 'float', go: 'float64' };
  return { k: 'any' };
}

function convertDef(name) {
  const s = definitions[name];
  if (!s) throw new Error(`no definition ${name}`);
  const node = convert(s, name);
  if (node.k === 'struct') node.go = goName(name);
  return node;
}

for (const [name, r] of Object.entries(ROOTS)) {
  if (r.def) {
    defs[name] = convertDef(r.def);
    continue;
  }
  const [p, method] = r.path;
  const param = (swagger.paths[p]?.[method]?.parameters ?? []).find((x) => x.in === 'body');
  if (!param) throw new Error(`no body for ${method} ${p}`);
  defs[name] = { k: 'struct', go: r.go, fields: fieldsOf(param.schema, name) };
}
while (pending.length) {
  const name = pending.shift();
  if (!(name in defs)) defs[name] = convertDef(name);
}

const out = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../src/api/decode/schema.generated.ts');
const body = JSON.stringify({ source: `Docker Engine API ${swagger.info?.version} swagger.yaml`, defs }, null, 1);
fs.writeFileSync(
  out,
  `// Generated by scripts/gen-api-schema.mjs from Docker's swagger.yaml: do not edit.\nimport type { Schema } from './schema.js';\n\nexport const SCHEMA: Schema = ${body};\n`,
);
console.log(`wrote ${out}: ${Object.keys(defs).length} types`);
