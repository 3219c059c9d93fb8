import type { Router } from '../router.js';
import type { RequestContext } from '../context.js';
import type { Task } from '../../cluster/types.js';
import type { SwarmNode } from '../../node/node.js';
import type { LogLine } from '../../cluster/rpc.js';
import { badRequest } from '../../util/errors.js';
import { parseTimeParam } from '../../engine/containers/io.js';
import { streamWriter } from '../../net/streams.js';
import { getService as findService } from '../../manager/control/services.js';
import { getTask as findTask } from '../../manager/control/tasks.js';

/**
 * `docker service logs SERVICE|TASK`: the manager asks each node holding the tasks for their
 * container logs (manager/dispatcher/logs.ts) and streams them as dockerd does. With
 * `details`, each line starts with its `com.docker.swarm.*` attributes, from which the CLI
 * builds the `name.slot.task@node |` prefix.
 */
export function serviceLogRoutes(router: Router, swarm: SwarmNode): void {
  router.get('/services/:id/logs', (ctx) => {
    const m = swarm.requireManager();
    const svc = findService(m.store, ctx.params.id);
    const tasks = m.store.list('tasks').filter((t) => t.ServiceID === svc.ID);
    return serve(ctx, swarm, tasks, svc.Spec.TaskTemplate?.ContainerSpec?.TTY === true, (t) => t.ServiceID === svc.ID);
  });

  router.get('/tasks/:id/logs', (ctx) => {
    const m = swarm.requireManager();
    const t = findTask(m.store, ctx.params.id);
    return serve(ctx, swarm, [t], t.Spec?.ContainerSpec?.TTY === true);
  });
}

/** `joins`: following a service, which tasks created later belong to it. */
async function serve(ctx: RequestContext, swarm: SwarmNode, tasks: Task[], tty: boolean, joins?: (t: Task) => boolean) {
  const stdout = ctx.bool('stdout');
  const stderr = ctx.bool('stderr');
  if (!stdout && !stderr) throw badRequest('Bad parameters: you must choose at least one stream');
  const tailRaw = ctx.query.get('tail');
  const tail = tailRaw && tailRaw !== 'all' ? Number(tailRaw) : undefined;
  if (tail !== undefined && !Number.isInteger(tail)) throw badRequest(`invalid value for tail: ${tailRaw}`);
  const since = parseTimeParam(ctx.query.get('since'));
  const details = ctx.bool('details');
  const timestamps = ctx.bool('timestamps');
  const m = swarm.requireManager();
  const byNode = new Map<string, string[]>();
  const taskById = new Map(tasks.map((t) => [t.ID, t]));
  for (const t of tasks) if (t.NodeID) byNode.set(t.NodeID, [...(byNode.get(t.NodeID) ?? []), t.ID]);

  const res = ctx.stream(200, tty ? 'application/vnd.docker.raw-stream' : 'application/vnd.docker.multiplexed-stream');
  const write = streamWriter(res, tty);
  const ac = new AbortController();
  res.on('close', () => ac.abort());
  const onLines = (nodeId: string, lines: LogLine[]) => {
    for (const l of lines) {
      if ((l.stream === 1 && !stdout) || (l.stream === 2 && !stderr)) continue;
      const t = taskById.get(l.taskId) ?? m.store.get('tasks', l.taskId);
      let head = '';
      if (timestamps) head += `${l.time} `;
      if (details)
        head += `${attrs({ 'com.docker.swarm.node.id': nodeId, 'com.docker.swarm.service.id': t?.ServiceID ?? '', 'com.docker.swarm.task.id': l.taskId })} `;
      write(l.stream, Buffer.concat([Buffer.from(head), Buffer.from(l.data, 'base64')]));
    }
  };
  await m.logs.logs({ byNode, follow: ctx.bool('follow'), tail, since, joins }, onLines, ac.signal);
  res.end();
  return undefined;
}

/** dockerd's details prefix: `k=v` pairs sorted by key, query-escaped, joined by commas. */
function attrs(a: Record<string, string>): string {
  return Object.keys(a)
    .sort()
    .map((k) => `${qe(k)}=${qe(a[k])}`)
    .join(',');
}
const qe = (s: string) => encodeURIComponent(s).replace(/%20/g, '+');
