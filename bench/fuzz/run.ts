/**
 * `npm run fuzz -- [--seed N] [--requests N] [--batch N] [--huge-mb N] [--kinds body,query,http,valid] [--tolerate-body-5xx]`
 *
 * Starts its own shoald (own network namespace, single-node swarm), then sends mutated bodies
 * to every write endpoint, garbled query strings and odd HTTP. After every batch it checks
 * that the daemon lives and every list endpoint answers 200, and removes what the batch made.
 * Prints counts by status and route, every 5xx with its request and answer, and exits 1 on a
 * crash, a dead list endpoint, an error answer that is not JSON {"message"}, or a 5xx that is
 * not on ALLOWED_5XX (below).
 */
import fs from 'node:fs';
import path from 'node:path';
import { startDaemon, type TestDaemon } from '../../test/helpers/daemon.js';
import { importBusybox } from '../../test/helpers/busybox.js';
import { Prng } from '../../test/helpers/prng.js';
import { send, NoAnswer, type RawRequest, type RawResponse } from './http.js';
import { mutateBody, garbleQuery, type Json } from './mutate.js';
import { WRITE_ENDPOINTS, LIST_ENDPOINTS, QUERY_ENDPOINTS, type Fixtures, type Inspect } from './endpoints.js';
import { oddRequest } from './odd-http.js';

/**
 * 5xx answers dockerd gives for the same request, so shoal may too. Keep this list tiny: each
 * entry says why dockerd answers so.
 */
export const ALLOWED_5XX: { route: RegExp; status: number; message: RegExp; why: string }[] = [
  {
    route: /^POST \/swarm\/(init|join)$/,
    status: 503,
    message: /^This node is already part of a swarm\./,
    why: 'dockerd: errSwarmExists is errdefs.Unavailable (503) for init/join on a node in a swarm',
  },
  {
    route: /^POST \/(services|nodes|secrets|configs)\/\{id\}\/update$|^POST \/swarm\/update$/,
    status: 500,
    message: /^rpc error: code = Unknown desc = update out of sequence$/,
    why: 'swarmkit answers a stale ?version= with codes.Unknown, which dockerd maps to 500 (the fuzzer reads the version first; a racing write can still make it stale)',
  },
  {
    route: /^POST \/services\/\{id\}\/update$/,
    status: 501,
    message:
      /^rpc error: code = Unimplemented desc = (service mode change is not allowed|renaming services is not supported)$/,
    why: 'swarmkit refuses a mode change or rename with codes.Unimplemented, which dockerd maps to 501',
  },
  {
    route: /^POST \/networks\/\{id\}\/disconnect$/,
    status: 500,
    message: /^container \w+ is not connected to (the )?network /,
    why: 'dockerd: DisconnectFromNetwork returns a plain error (500) for a container that is not on the network',
  },
];

type Origin = 'body' | 'query' | 'http' | 'valid';
const ORIGINS: Origin[] = ['body', 'query', 'http', 'valid'];
/** The mix of one run: mostly mutated bodies; query strings of write and of read endpoints; odd HTTP; some valid requests. */
const KIND_WEIGHTS: [number, Origin | 'read-query'][] = [
  [62, 'body'],
  [10, 'query'],
  [10, 'read-query'],
  [12, 'http'],
  [6, 'valid'],
];

interface Outcome {
  route: string;
  origin: Origin;
  mutation: string;
  request: string;
  status: number | 'no-answer' | 'closed-early';
  message: string;
  /** Sent after a list endpoint was first found broken: the 5xx may be a consequence of that state. */
  afterBroken: boolean;
}

interface Options {
  seed: number;
  requests: number;
  batch: number;
  hugeBytes: number;
  timeoutMs: number;
  tolerateBody5xx: boolean;
  kinds: Set<Origin>;
}

function parseArgs(argv: string[]): Options {
  const o: Options = {
    seed: 1,
    requests: 1000,
    batch: 100,
    hugeBytes: 4 * 1024 * 1024,
    timeoutMs: 30_000,
    tolerateBody5xx: false,
    kinds: new Set(ORIGINS),
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const num = () => {
      const v = Number(argv[++i]);
      if (!Number.isFinite(v) || v < 0) throw new Error(`${a} needs a number`);
      return v;
    };
    if (a === '--seed') o.seed = num();
    else if (a === '--requests') o.requests = num();
    else if (a === '--batch') o.batch = Math.max(1, num());
    else if (a === '--huge-mb') o.hugeBytes = Math.round(num() * 1024 * 1024);
    else if (a === '--timeout-ms') o.timeoutMs = num();
    else if (a === '--tolerate-body-5xx') o.tolerateBody5xx = true;
    else if (a === '--kinds') {
      const ks = (argv[++i] ?? '').split(',');
      for (const k of ks) if (!ORIGINS.includes(k as Origin)) throw new Error(`--kinds takes ${ORIGINS.join(',')}`);
      o.kinds = new Set(ks as Origin[]);
    } else throw new Error(`unknown argument ${a} (see bench/fuzz/run.ts)`);
  }
  return o;
}

function describe(r: RawRequest): string {
  if (r.raw) return JSON.stringify(r.raw.subarray(0, 300).toString('latin1'));
  const body =
    r.body === undefined
      ? ''
      : ` body(${Buffer.byteLength(r.body)} B)=${Buffer.from(r.body).subarray(0, 300).toString()}`;
  return `${r.method} ${r.target.slice(0, 300)}${r.target.length > 300 ? `…(${r.target.length} chars)` : ''}${body}`;
}

/** The message of an error answer, or why it is not Docker's JSON {"message": "…"}. */
function errorMessage(r: RawResponse): { ok: boolean; message: string } {
  const text = r.body.toString('utf8');
  try {
    const j = JSON.parse(text) as unknown;
    if (j && typeof j === 'object' && typeof (j as { message?: unknown }).message === 'string')
      return { ok: true, message: (j as { message: string }).message };
  } catch {
    // falls through
  }
  return {
    ok: false,
    message: `not JSON {"message"}: ${JSON.stringify(text.slice(0, 200))} (Content-Type ${r.headers['content-type'] ?? 'none'})`,
  };
}

class Api {
  constructor(
    private readonly socket: string,
    private readonly timeoutMs: number,
  ) {}

  async call(method: string, target: string, body?: Json): Promise<{ status: number; json: unknown; text: string }> {
    const r = await send(
      this.socket,
      { method, target, body: body === undefined ? undefined : JSON.stringify(body) },
      this.timeoutMs,
    );
    const text = r.body.toString('utf8');
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    return { status: r.status, json, text };
  }

  async must<T = Record<string, unknown>>(method: string, target: string, body?: Json): Promise<T> {
    const r = await this.call(method, target, body);
    if (r.status >= 300) throw new Error(`${method} ${target}: ${r.status} ${r.text.slice(0, 300)}`);
    return r.json as T;
  }
}

async function setUp(d: TestDaemon, api: Api): Promise<Fixtures> {
  const init = await d.docker(['swarm', 'init', '--advertise-addr', '127.0.0.1']);
  if (init.code !== 0) throw new Error(`swarm init: ${init.stderr}`);
  const image = 'fuzzbox:latest';
  await importBusybox(d.docker, d.dir, image);
  const nodeId = (await api.must<{ Swarm: { NodeID: string } }>('GET', '/info')).Swarm.NodeID;
  const node = await api.must<{ Version: { Index: number } }>('GET', `/nodes/${nodeId}`);
  // Drained: services the fuzzer creates never start a task.
  await api.must('POST', `/nodes/${nodeId}/update?version=${node.Version.Index}`, {
    Role: 'manager',
    Availability: 'drain',
    Labels: {},
  });
  const running = (
    await api.must<{ Id: string }>('POST', '/containers/create?name=fz-running', {
      Image: image,
      Cmd: ['sleep', '100000'],
      HostConfig: { NetworkMode: 'none' },
    })
  ).Id;
  await api.must('POST', `/containers/${running}/start`);
  const idle = (
    await api.must<{ Id: string }>('POST', '/containers/create?name=fz-idle', { Image: image, Cmd: ['true'] })
  ).Id;
  const bridge = (await api.must<{ Id: string }>('POST', '/networks/create', { Name: 'fz-br', Driver: 'bridge' })).Id;
  const overlay = (
    await api.must<{ Id: string }>('POST', '/networks/create', { Name: 'fz-ov', Driver: 'overlay', Attachable: true })
  ).Id;
  const f: Fixtures = {
    image,
    running,
    idle,
    bridge,
    overlay,
    service: '',
    secret: '',
    config: '',
    nodeId,
    joinToken: '',
  };
  const { serviceSpec } = await import('./endpoints.js');
  f.service = (await api.must<{ ID: string }>('POST', '/services/create', serviceSpec(f, new Prng(0), 'fz-svc'))).ID;
  f.secret = (
    await api.must<{ ID: string }>('POST', '/secrets/create', {
      Name: 'fz-secret',
      Data: Buffer.from('s').toString('base64'),
    })
  ).ID;
  f.config = (
    await api.must<{ ID: string }>('POST', '/configs/create', {
      Name: 'fz-config',
      Data: Buffer.from('c').toString('base64'),
    })
  ).ID;
  f.joinToken = (await api.must<{ JoinTokens: { Worker: string } }>('GET', '/swarm')).JoinTokens.Worker;
  return f;
}

/** Puts the fixtures back as they were and removes everything else a batch made. Returns what failed. */
async function restore(api: Api, f: Fixtures, swarmSpec: Json): Promise<string[]> {
  const failed: string[] = [];
  const attempt = async (what: string, fn: () => Promise<unknown>) => {
    try {
      await fn();
    } catch (e) {
      failed.push(`${what}: ${(e as Error).message}`);
    }
  };
  const list = async <T>(p: string): Promise<T[]> => (await api.must<T[]>('GET', p)) ?? [];
  await attempt('services', async () => {
    for (const s of await list<{ ID: string }>('/services'))
      if (s.ID !== f.service) await api.must('DELETE', `/services/${s.ID}`);
  });
  await attempt('containers', async () => {
    for (const c of await list<{ Id: string }>('/containers/json?all=1'))
      if (c.Id !== f.running && c.Id !== f.idle) await api.must('DELETE', `/containers/${c.Id}?force=1`);
  });
  await attempt('restart the running fixture', async () => {
    const c = await api.must<{ State: { Running: boolean } }>('GET', `/containers/${f.running}/json`);
    if (!c.State.Running) await api.must('POST', `/containers/${f.running}/start`);
  });
  await attempt('volumes', async () => {
    for (const v of (await api.must<{ Volumes: { Name: string }[] | null }>('GET', '/volumes')).Volumes ?? [])
      await api.must('DELETE', `/volumes/${encodeURIComponent(v.Name)}?force=1`);
  });
  await attempt('networks', async () => {
    for (const n of await list<{ Id: string; Name: string }>('/networks')) {
      if ([f.bridge, f.overlay].includes(n.Id) || ['bridge', 'host', 'none', 'ingress'].includes(n.Name)) continue;
      await api.must('DELETE', `/networks/${n.Id}`);
    }
  });
  for (const kind of ['secrets', 'configs'] as const) {
    await attempt(kind, async () => {
      for (const o of await list<{ ID: string }>(`/${kind}`))
        if (o.ID !== f.secret && o.ID !== f.config) await api.must('DELETE', `/${kind}/${o.ID}`);
    });
  }
  await attempt('image tags', async () => {
    for (const i of await list<{ RepoTags: string[] | null }>('/images/json')) {
      for (const t of i.RepoTags ?? []) if (t !== f.image) await api.must('DELETE', `/images/${t}?noprune=1`);
    }
  });
  await attempt('node spec', async () => {
    const n = await api.must<{ Version: { Index: number } }>('GET', `/nodes/${f.nodeId}`);
    await api.must('POST', `/nodes/${f.nodeId}/update?version=${n.Version.Index}`, {
      Role: 'manager',
      Availability: 'drain',
      Labels: {},
    });
  });
  await attempt('swarm spec', async () => {
    const c = await api.must<{ Version: { Index: number } }>('GET', '/swarm');
    await api.must('POST', `/swarm/update?version=${c.Version.Index}`, swarmSpec);
  });
  return failed;
}

async function main(): Promise<number> {
  const o = parseArgs(process.argv.slice(2));
  const p = new Prng(o.seed);
  console.log(`fuzz: seed ${o.seed}, ${o.requests} requests, batches of ${o.batch}, huge body ${o.hugeBytes} B`);
  const d = await startDaemon({ prefix: 'fuzz' });
  const api = new Api(d.socket, o.timeoutMs);
  const outcomes: Outcome[] = [];
  const problems: string[] = [];
  let crashed = false;
  /** The request after which a list endpoint first failed. */
  let brokenSince: number | undefined;
  const started = Date.now();
  let peakRss = 0;
  const rssMiB = () => {
    try {
      const m = /VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${d.pid}/status`, 'utf8'));
      return m ? Number(m[1]) / 1024 : 0;
    } catch {
      return 0;
    }
  };
  try {
    const f = await setUp(d, api);
    const swarmSpec = (await api.must<{ Spec: Json }>('GET', '/swarm')).Spec;
    const inspect: Inspect = (pth) => api.must('GET', pth);
    let n = 0;
    for (let sent = 0; sent < o.requests && !crashed;) {
      const batchEnd = Math.min(o.requests, sent + o.batch);
      for (; sent < batchEnd; sent++) {
        n++;
        const tag = `${o.seed}-${n}`;
        let req: RawRequest;
        let route: string;
        let origin: Origin;
        let mutation: string;
        const kind = p.weighted(KIND_WEIGHTS.filter(([, k]) => o.kinds.has(k === 'read-query' ? 'query' : k)));
        try {
          if (kind === 'http') {
            ({ req, route, mutation } = oddRequest(p));
            origin = 'http';
          } else if (kind === 'read-query') {
            const e = p.pick(QUERY_ENDPOINTS);
            const g = garbleQuery(p, e.query);
            req = { method: e.method, target: `${e.path(f)}?${g.query}` };
            ({ route, mutation } = { route: e.route, mutation: g.mutation });
            origin = 'query';
          } else {
            const e = p.pick(WRITE_ENDPOINTS);
            const prep = await e.prepare(f, p, tag, inspect);
            route = e.route;
            let query = new URLSearchParams(prep.query).toString();
            let body = prep.body === undefined ? undefined : JSON.stringify(prep.body);
            if (kind === 'body' && prep.body !== undefined) {
              const m = mutateBody(p, prep.body, { hugeBytes: o.hugeBytes, pinned: e.pinned });
              body = m.text;
              mutation = m.mutation;
              origin = 'body';
            } else if (kind === 'valid') {
              mutation = 'valid request';
              origin = 'valid';
            } else {
              const g = garbleQuery(p, prep.query);
              query = g.query;
              mutation = g.mutation;
              origin = 'query';
            }
            req = { method: prep.method, target: `${prep.path}${query ? `?${query}` : ''}`, body };
          }
        } catch (e) {
          problems.push(`could not prepare request ${n} (${kind}): ${(e as Error).message}`);
          continue;
        }
        let outcome: Outcome;
        try {
          const r = await send(d.socket, req, o.timeoutMs);
          const isError = r.status >= 400 && req.method !== 'HEAD';
          const em = isError ? errorMessage(r) : { ok: true, message: '' };
          outcome = {
            route,
            origin,
            mutation,
            request: describe(req),
            status: r.status,
            message: em.message,
            afterBroken: brokenSince !== undefined,
          };
          if (!em.ok)
            problems.push(
              `non-JSON error answer: ${route} [${mutation}] ${r.status} ${em.message}\n    request: ${describe(req)}`,
            );
        } catch (e) {
          if (!(e instanceof NoAnswer)) throw e;
          outcome = {
            route,
            origin,
            mutation,
            request: describe(req),
            status: e.closedEarly ? 'closed-early' : 'no-answer',
            message: e.message,
            afterBroken: brokenSince !== undefined,
          };
          if (!e.closedEarly)
            problems.push(`no answer: ${route} [${mutation}] ${e.message}\n    request: ${describe(req)}`);
        }
        outcomes.push(outcome);
      }
      // After every batch: the daemon lives, every list endpoint answers, the batch's objects go.
      if (!d.pid || !processAlive(d.pid)) {
        crashed = true;
        problems.push(`CRASH: shoald (pid ${d.pid}) is gone after request ${n}; log: ${d.dir}/shoald.log`);
        break;
      }
      peakRss = Math.max(peakRss, rssMiB());
      for (const l of LIST_ENDPOINTS) {
        try {
          const r = await api.call('GET', l);
          if (r.status !== 200 || r.json === undefined) {
            problems.push(`dead list endpoint after request ${n}: GET ${l} -> ${r.status} ${r.text.slice(0, 300)}`);
            brokenSince ??= n;
          }
        } catch (e) {
          problems.push(`dead list endpoint after request ${n}: GET ${l} -> ${(e as Error).message}`);
          brokenSince ??= n;
        }
      }
      for (const fail of await restore(api, f, swarmSpec)) problems.push(`clean-up after request ${n}: ${fail}`);
      process.stdout.write(
        `  ${sent}/${o.requests} requests, ${((Date.now() - started) / 1000).toFixed(0)} s, shoald RSS ${rssMiB().toFixed(0)} MiB\n`,
      );
    }
  } finally {
    if (process.env.FUZZ_KEEP_LOG) fs.copyFileSync(path.join(d.dir, 'shoald.log'), process.env.FUZZ_KEEP_LOG);
    await d.destroy();
  }
  return report(o, outcomes, problems, crashed, (Date.now() - started) / 1000, peakRss, brokenSince);
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function report(
  o: Options,
  outcomes: Outcome[],
  problems: string[],
  crashed: boolean,
  seconds: number,
  peakRss: number,
  brokenSince: number | undefined,
): number {
  const byStatus = new Map<string, number>();
  const byRoute = new Map<string, Map<string, number>>();
  for (const x of outcomes) {
    const s = String(x.status);
    byStatus.set(s, (byStatus.get(s) ?? 0) + 1);
    const cls = typeof x.status === 'number' ? `${String(x.status)[0]}xx` : 'none';
    const m = byRoute.get(x.route) ?? new Map<string, number>();
    m.set(cls, (m.get(cls) ?? 0) + 1);
    byRoute.set(x.route, m);
  }
  if (brokenSince !== undefined)
    console.log(
      `\nNOTE: a list endpoint first failed after request ${brokenSince}: some state stored by a request before it breaks reads.`,
    );
  console.log(
    `\n${outcomes.length} requests in ${seconds.toFixed(0)} s (seed ${o.seed}); shoald peak RSS ${peakRss.toFixed(0)} MiB`,
  );
  console.log(
    '\nby status: ' +
      [...byStatus]
        .sort()
        .map(([s, c]) => `${s}: ${c}`)
        .join(', '),
  );
  console.log('\nby route (2xx/3xx/4xx/5xx/none):');
  for (const [r, m] of [...byRoute].sort())
    console.log(
      `  ${r.padEnd(36)} ${['2xx', '3xx', '4xx', '5xx', 'none'].map((c) => String(m.get(c) ?? 0).padStart(5)).join(' ')}`,
    );

  const fivexx = outcomes.filter((x) => typeof x.status === 'number' && x.status >= 500);
  const allowed = (x: Outcome) =>
    ALLOWED_5XX.some((a) => a.route.test(x.route) && a.status === x.status && a.message.test(x.message));
  const groups = new Map<string, { first: Outcome; count: number; allowed: boolean }>();
  for (const x of fivexx) {
    const key = `${x.afterBroken}|${x.origin}|${x.route}|${x.status}|${x.message.replace(/[0-9a-f]{12,}/g, '…').slice(0, 160)}`;
    const g = groups.get(key);
    if (g) g.count++;
    else groups.set(key, { first: x, count: 1, allowed: allowed(x) });
  }
  let failing5xx = 0;
  let tolerated = 0;
  for (const [origin, afterBroken] of ORIGINS.flatMap(
    (x) =>
      [
        [x, false],
        [x, true],
      ] as const,
  )) {
    const gs = [...groups.values()].filter((g) => g.first.origin === origin && g.first.afterBroken === afterBroken);
    if (!gs.length) continue;
    const title =
      (origin === 'body'
        ? "from mutated request BODIES (the body decoder's)"
        : origin === 'valid'
          ? 'from VALID requests'
          : `from ${origin.toUpperCase()} mutations`) +
      (afterBroken
        ? `, sent after request ${brokenSince} left a list endpoint broken (may be consequences of that state)`
        : '');
    console.log(`\n5xx ${title}:`);
    for (const g of gs.sort((a, b) => b.count - a.count)) {
      const verdict = g.allowed
        ? 'allowed (dockerd too)'
        : origin === 'body' && o.tolerateBody5xx
          ? 'tolerated (--tolerate-body-5xx)'
          : 'FAIL';
      if (!g.allowed) {
        if (origin === 'body' && o.tolerateBody5xx) tolerated += g.count;
        else failing5xx += g.count;
      }
      console.log(
        `  [${verdict}] ${g.count}x ${g.first.route} -> ${g.first.status} ${JSON.stringify(g.first.message.slice(0, 300))}\n      e.g. [${g.first.mutation}] ${g.first.request}`,
      );
    }
  }
  if (problems.length) {
    console.log(`\nproblems (${problems.length}):`);
    const seen = new Map<string, number>();
    for (const pr of problems) seen.set(pr, (seen.get(pr) ?? 0) + 1);
    for (const [pr, c] of seen) console.log(`  ${c > 1 ? `${c}x ` : ''}${pr}`);
  }
  console.log('\nallowlisted 5xx (dockerd gives them too):');
  for (const a of ALLOWED_5XX) console.log(`  ${a.status} ${a.route.source}: ${a.why}`);
  const ok = !crashed && problems.length === 0 && failing5xx === 0;
  console.log(
    `\n${ok ? 'PASS' : 'FAIL'}: crash ${crashed ? 'yes' : 'no'}, problems ${problems.length}, 5xx ${fivexx.length} (failing ${failing5xx}, tolerated body ${tolerated}, allowlisted ${fivexx.length - failing5xx - tolerated})`,
  );
  return ok ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.error(e);
    process.exit(2);
  },
);
