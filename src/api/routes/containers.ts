import type { Router } from '../router.js';
import type { Engine } from '../../engine/engine.js';
import { badRequest } from '../../util/errors.js';
import { versionAtLeast } from '../version.js';
import type { ContainerManager, WaitCondition } from '../../engine/containers/manager.js';
import { attach, parseTimeParam, streamLogs } from '../../engine/containers/io.js';
import { emptyStats, sampleStats, ZERO_READ, type ContainerStats } from '../../engine/containers/stats.js';
import { cgroupsPathOf } from '../../engine/containers/spec.js';
import { parseDetachKeys } from '../../engine/containers/detach-keys.js';

/** Optional integer query value (`t` of stop/restart); undefined when absent. */
function optInt(v: string | null, name: string): number | undefined {
  if (v === null || v === '') return undefined;
  if (!/^-?\d+$/.test(v)) throw badRequest(`invalid value for ${name}: ${v}`);
  return Number(v);
}

/** `docker run/create/start/stop/kill/restart/rm/ps/inspect/logs/attach/wait` and `docker exec`. */
export function containerRoutes(router: Router, engine: Engine): void {
  containerLifecycleRoutes(router, engine.containers);
  containerStreamRoutes(router, engine.containers);
  execRoutes(router, engine.containers);
}

/** Create, list, inspect, start/stop and the rest of a container's life, through remove and wait. */
function containerLifecycleRoutes(router: Router, m: ContainerManager): void {
  router.post('/containers/create', async (ctx) => {
    ctx.checkForJson();
    const body = await ctx.body('ContainerCreate');
    const { HostConfig: hostConfig, NetworkingConfig: net, ...config } = body;
    const created = await m.create({
      name: ctx.query.get('name') ?? undefined,
      config,
      hostConfig,
      endpointsConfig: net?.EndpointsConfig,
    });
    return { status: 201, body: created };
  });

  router.get('/containers/json', (ctx) => ({
    body: m.list({ all: ctx.bool('all'), filters: ctx.filters(), limit: ctx.int('limit', 0) }),
  }));

  router.post('/containers/prune', async () => ({ body: await m.prune() }));

  router.get('/containers/:id/json', (ctx) => ({ body: m.inspect(ctx.params.id) }));

  router.post('/containers/:id/start', async (ctx) => {
    await m.start(ctx.params.id);
  });

  router.post('/containers/:id/stop', async (ctx) => {
    await m.stop(ctx.params.id, optInt(ctx.query.get('t'), 't'));
  });

  router.post('/containers/:id/restart', async (ctx) => {
    await m.restart(ctx.params.id, optInt(ctx.query.get('t'), 't'));
  });

  router.post('/containers/:id/kill', async (ctx) => {
    await m.kill(ctx.params.id, ctx.query.get('signal') || 'SIGKILL');
  });

  router.post('/containers/:id/pause', async (ctx) => {
    await m.pause(ctx.params.id);
  });

  router.post('/containers/:id/unpause', async (ctx) => {
    await m.unpause(ctx.params.id);
  });

  router.post('/containers/:id/rename', (ctx) => {
    const name = ctx.query.get('name');
    if (!name) throw badRequest('Neither old nor new names may be empty');
    m.rename(ctx.params.id, name);
  });

  router.post('/containers/:id/update', async (ctx) => {
    ctx.checkForJson();
    const body = await ctx.body('ContainerUpdate');
    return { body: await m.update(ctx.params.id, body) };
  });

  router.get('/containers/:id/top', async (ctx) => ({
    body: await m.top(ctx.params.id, ctx.query.get('ps_args') || '-ef'),
  }));

  // `:id*`: a link's name (`parent/alias`) has a slash; `link=true` removes only that link.
  router.delete('/containers/:id*', async (ctx) => {
    if (ctx.bool('link')) return m.removeLink(ctx.params.id);
    await m.remove(ctx.params.id, { force: ctx.bool('force'), volumes: ctx.bool('v') });
  });

  router.post('/containers/:id/wait', async (ctx) => {
    const condition = (ctx.query.get('condition') || 'not-running') as WaitCondition;
    if (!['not-running', 'next-exit', 'removed'].includes(condition))
      throw badRequest(`invalid condition: "${condition}"`);
    m.get(ctx.params.id); // 404 before the headers go out
    const ac = new AbortController();
    const pending = m.wait(ctx.params.id, condition, ac.signal);
    // Headers at once, as dockerd does: the client knows the wait is registered.
    const res = ctx.stream(200, 'application/json');
    res.on('close', () => ac.abort());
    const result = await pending;
    res.end(JSON.stringify(result) + '\n');
  });
}

/** Streams out of a container: stats, logs, attach. */
function containerStreamRoutes(router: Router, m: ContainerManager): void {
  router.get('/containers/:id/stats', async (ctx) => {
    const stream = ctx.bool('stream', true);
    const oneShot = ctx.bool('one-shot');
    if (oneShot && stream) throw badRequest('cannot have stream=true and one-shot=true');
    const id = m.get(ctx.params.id).id;
    const sample = (prev?: ContainerStats): ContainerStats | undefined => {
      const rec = m.find(id);
      if (!rec) return undefined;
      return rec.state.Status === 'running' || rec.state.Status === 'paused'
        ? sampleStats(rec, cgroupsPathOf(id), prev)
        : emptyStats(rec);
    };
    const res = ctx.stream(200, 'application/json');
    let closed = false;
    res.on('close', () => (closed = true));
    // dockerd samples every second; precpu_stats is the sample before.
    const tick = () => new Promise((r) => setTimeout(r, 1000));
    let s = sample();
    if (!stream) {
      if (!oneShot && s && s.read !== ZERO_READ) {
        await tick();
        s = sample(s) ?? s;
      }
      res.end(JSON.stringify(s) + '\n');
      return;
    }
    while (!closed && s) {
      res.write(JSON.stringify(s) + '\n');
      await tick();
      s = sample(s.read !== ZERO_READ ? s : undefined);
    }
    res.end();
  });

  router.get('/containers/:id/logs', async (ctx) => {
    const stdout = ctx.bool('stdout');
    const stderr = ctx.bool('stderr');
    if (!stdout && !stderr) throw badRequest('Bad parameters: you must choose at least one stream');
    const rec = m.get(ctx.params.id);
    const tailRaw = ctx.query.get('tail');
    const tail = tailRaw && tailRaw !== 'all' ? Number(tailRaw) : undefined;
    if (tail !== undefined && !Number.isInteger(tail)) throw badRequest(`invalid value for tail: ${tailRaw}`);
    const opts = {
      stdout,
      stderr,
      follow: ctx.bool('follow'),
      timestamps: ctx.bool('timestamps'),
      since: parseTimeParam(ctx.query.get('since')),
      until: parseTimeParam(ctx.query.get('until')),
      tail,
    };
    // API 1.41 names both framed and raw (TTY) logs raw-stream; the CLI decides by Config.Tty.
    const res = ctx.stream(200, 'application/vnd.docker.raw-stream');
    const ac = new AbortController();
    res.on('close', () => ac.abort());
    await streamLogs(m, rec.id, opts, res, ac.signal);
    res.end();
  });

  router.post('/containers/:id/attach', async (ctx) => {
    const rec = m.get(ctx.params.id);
    const detachKeys = ctx.query.get('detachKeys') ?? undefined;
    parseDetachKeys(detachKeys); // a bad sequence is a 400 before the connection is taken over
    const io = ctx.hijack();
    await attach(
      m,
      rec.id,
      {
        stream: ctx.bool('stream'),
        stdin: ctx.bool('stdin'),
        stdout: ctx.bool('stdout'),
        stderr: ctx.bool('stderr'),
        logs: ctx.bool('logs'),
        detachKeys,
      },
      io,
    );
  });

  // TTY size changes are accepted and ignored: the terminal keeps its first size.
  router.post('/containers/:id/resize', (ctx) => {
    m.get(ctx.params.id);
    return { status: 200, body: '' };
  });
}

/** `docker exec`. */
function execRoutes(router: Router, m: ContainerManager): void {
  router.post('/containers/:id/exec', async (ctx) => {
    ctx.checkForJson();
    const cfg = await ctx.body('ExecConfig');
    return { status: 201, body: { Id: m.exec.create(ctx.params.id, cfg) } };
  });

  router.post('/exec/:id/start', async (ctx) => {
    if (versionAtLeast(ctx.apiVersion, '1.22')) ctx.checkForJson(); // dockerd: only above 1.21
    const body = await ctx.body('ExecStartCheck');
    const e = m.exec.check(ctx.params.id);
    // The process gets a TTY if the exec was created with one; the start's Tty only says
    // whether the answer is raw or framed, as in dockerd (a TTY's output all comes framed as stdout).
    const raw = body.Tty ?? e.config.Tty === true;
    if (body.Detach) {
      m.exec
        .start(e.id, undefined, raw)
        .catch((err: unknown) => m.log.warn({ err, exec: e.id }, 'detached exec failed'));
      return { status: 200, body: '' };
    }
    const io = ctx.hijack();
    await m.exec.start(e.id, io, raw);
  });

  router.post('/exec/:id/resize', (ctx) => {
    m.exec.get(ctx.params.id);
    return { status: 200, body: '' };
  });

  router.get('/exec/:id/json', (ctx) => ({ body: m.exec.inspect(ctx.params.id) }));
}
