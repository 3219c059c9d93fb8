import type { RequestContext } from '../context.js';
import { badRequest } from '../../util/errors.js';
import { eventMatches, type EventLog } from '../../engine/events.js';
import { parseTimeParam } from '../../engine/containers/io.js';

const FILTERS = new Set([
  'type',
  'event',
  'container',
  'image',
  'label',
  'scope',
  'network',
  'volume',
  'daemon',
  'plugin',
  'node',
  'service',
  'secret',
  'config',
]);

/** `GET /events`: past events from `since`, then live ones until `until` or the client leaves. */
export function streamEvents(ctx: RequestContext, log: EventLog): void {
  const filters = ctx.filters();
  for (const k of filters.keys()) if (!FILTERS.has(k)) throw badRequest(`invalid filter '${k}'`);
  const since = parseTimeParam(ctx.query.get('since'));
  const until = parseTimeParam(ctx.query.get('until'));
  const res = ctx.stream(200, 'application/json');
  const send = (e: Parameters<typeof eventMatches>[0]) => {
    if (eventMatches(e, filters)) res.write(JSON.stringify(e) + '\n');
  };
  const nowSec = Date.now() / 1000;
  if (until && until <= nowSec) {
    for (const e of log.history(since, until)) send(e);
    res.end();
    return;
  }
  const off = log.subscribe(since || undefined, send);
  const timer = until
    ? setTimeout(
        () => {
          off();
          res.end();
        },
        (until - nowSec) * 1000,
      )
    : undefined;
  ctx.req.on('close', () => {
    if (timer) clearTimeout(timer);
    off();
    res.end();
  });
}
