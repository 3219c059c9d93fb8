/**
 * Request body decoding (src/api/decode): a service spec as `docker service create` sends it,
 * and a body at the 4 MiB limit, decoded against Docker's schema, next to plain JSON.parse of
 * the same text. Pure CPU, no daemon. Run: `npx tsc -p . && node dist/bench/api-decode.js [n]`.
 */
import { decodeBody, MAX_JSON_BODY } from '../src/api/decode/index.js';

const N = Number(process.argv[2] ?? 20_000);

const spec = JSON.stringify({
  Name: 'web',
  Labels: { 'com.docker.stack.namespace': 'app' },
  TaskTemplate: {
    ContainerSpec: {
      Image: 'registry.local:5000/micro:1.0.0@sha256:' + 'a'.repeat(64),
      Args: ['serve', '--port', '8080'],
      Env: Array.from({ length: 20 }, (_, i) => `VAR_${i}=value-${i}`),
      Labels: { tier: 'web' },
      Mounts: [{ Type: 'volume', Source: 'data', Target: '/data', VolumeOptions: { Labels: { a: 'b' } } }],
      Healthcheck: { Test: ['CMD', 'wget', '-q', 'localhost:8080'], Interval: 5e9, Retries: 3 },
      StopGracePeriod: 10e9,
      DNSConfig: {},
      Isolation: 'default',
    },
    Resources: { Limits: { NanoCPUs: 5e8, MemoryBytes: 268435456 }, Reservations: {} },
    RestartPolicy: { Condition: 'any', Delay: 5e9, MaxAttempts: 0 },
    Placement: {
      Constraints: ['node.role==worker'],
      Preferences: [{ Spread: { SpreadDescriptor: 'node.labels.zone' } }],
    },
    Networks: [{ Target: 'app_default', Aliases: ['web'] }],
    ForceUpdate: 0,
    Runtime: 'container',
  },
  Mode: { Replicated: { Replicas: 3 } },
  UpdateConfig: { Parallelism: 1, FailureAction: 'pause', Monitor: 5e9, MaxFailureRatio: 0, Order: 'stop-first' },
  EndpointSpec: {
    Mode: 'vip',
    Ports: [{ Protocol: 'tcp', TargetPort: 8080, PublishedPort: 8080, PublishMode: 'ingress' }],
  },
});

function time(label: string, bytes: number, n: number, f: () => unknown): void {
  for (let i = 0; i < Math.min(n, 100); i++) f();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) f();
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  console.log(
    `${label.padEnd(40)} ${(n / s).toFixed(0).padStart(8)} /s  ${((bytes * n) / s / 1e6).toFixed(1).padStart(7)} MB/s`,
  );
}

console.log(`service spec: ${spec.length} bytes, ${N} times`);
time('decodeBody(ServiceSpec)', spec.length, N, () => decodeBody('ServiceSpec', spec));
time('JSON.parse (no checks, for scale)', spec.length, N, () => JSON.parse(spec));

const big = JSON.stringify({
  Name: 'big',
  Labels: Object.fromEntries(Array.from({ length: 35_000 }, (_, i) => [`label.${i}`, 'v'.repeat(90)])),
});
if (big.length > MAX_JSON_BODY) throw new Error('the big body must fit the limit');
console.log(`a volume body of ${big.length} bytes (35,000 labels; limit ${MAX_JSON_BODY})`);
time('decodeBody(VolumeCreateBody)', big.length, 20, () => decodeBody('VolumeCreateBody', big));
time('JSON.parse (no checks, for scale)', big.length, 20, () => JSON.parse(big));
