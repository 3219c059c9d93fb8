import { badRequest } from '../../util/errors.js';
import type { ContainerRecord } from './record.js';

const KEYS = new Set([
  'id',
  'name',
  'label',
  'status',
  'ancestor',
  'exited',
  'network',
  'before',
  'since',
  'volume',
  'health',
  'isolation',
  'is-task',
  'publish',
  'expose',
]);
const STATUSES = new Set(['created', 'restarting', 'running', 'removing', 'paused', 'exited', 'dead']);

export function validateFilters(filters: Map<string, string[]>): void {
  for (const [k, vs] of filters) {
    if (!KEYS.has(k)) throw badRequest(`invalid filter '${k}'`);
    if (k === 'status') for (const v of vs) if (!STATUSES.has(v)) throw badRequest(`Invalid filter 'status=${v}'`);
    if (k === 'exited') for (const v of vs) if (!/^-?\d+$/.test(v)) throw badRequest(`invalid filter 'exited=${v}'`);
  }
}

/** Docker's name/id match: a regular expression, falling back to a substring. */
function matchesPattern(pattern: string, value: string): boolean {
  try {
    return new RegExp(pattern).test(value);
  } catch {
    return value.includes(pattern);
  }
}

/** Each filter key must match (any of its values); `label` values must all match. */
export function matchesFilters(
  r: ContainerRecord,
  filters: Map<string, string[]>,
  imageMatches: (ref: string) => boolean,
): boolean {
  for (const [k, vs] of filters) {
    if (vs.length === 0) continue;
    switch (k) {
      case 'id':
        if (!vs.some((v) => r.id.startsWith(v))) return false;
        break;
      case 'name':
        if (!vs.some((v) => matchesPattern(v, r.name) || matchesPattern(v, r.name.slice(1)))) return false;
        break;
      case 'label':
        for (const v of vs) {
          const i = v.indexOf('=');
          const labels = r.config.Labels ?? {};
          if (i < 0 ? !(v in labels) : labels[v.slice(0, i)] !== v.slice(i + 1)) return false;
        }
        break;
      case 'status':
        if (!vs.includes(r.state.Status)) return false;
        break;
      case 'exited':
        if (r.state.Status !== 'exited' || !vs.includes(String(r.state.ExitCode))) return false;
        break;
      case 'ancestor':
        if (!vs.some(imageMatches)) return false;
        break;
      case 'network':
        // Its own network, or one joined with `network connect` (named as then).
        if (
          !vs.some(
            (v) =>
              (v === 'bridge' && ['default', 'bridge'].includes(r.hostConfig.NetworkMode ?? 'default')) ||
              v === r.hostConfig.NetworkMode ||
              (r.connectedNetworks ?? []).includes(v),
          )
        )
          return false;
        break;
      case 'health':
        if (!vs.includes(r.state.Health?.Status ?? 'none')) return false;
        break;
      case 'volume':
        // A volume's name or a mount's destination in the container (dockerd's ps filter).
        if (!vs.some((v) => (r.mountPoints ?? []).some((mp) => mp.Name === v || mp.Destination === v))) return false;
        break;
      case 'is-task':
        if (vs.includes('true') !== Boolean(r.config.Labels?.['com.docker.swarm.task.id'])) return false;
        break;
      default:
        break;
    }
  }
  return true;
}
