import type { Node } from '../../cluster/types.js';
import { contains, parseIp, parseSubnet } from '../../net/ipv4.js';

/**
 * Placement constraints, `key==value` / `key!=value` (swarmkit manager/constraint): parsed
 * once when a service is created, matched against every node by the scheduler. Values
 * compare case-insensitively; a missing attribute is "" (so `!=` matches it).
 */

export interface Constraint {
  key: string;
  op: '==' | '!=';
  value: string;
}

const KEY = /^[a-z_][a-z0-9\-_.]+$/i;
// No current or future operators (<, >, ~) in values.
const VALUE = /^[a-z0-9:\-_\s.*()?+[\]\\^$|/]+$/i;
const OPERATORS = ['==', '!='] as const;

export class ConstraintError extends Error {}

export function parseConstraints(exprs: string[] = []): Constraint[] {
  return exprs.map(parseConstraint);
}

export function parseConstraint(expr: string): Constraint {
  for (const op of OPERATORS) {
    const i = expr.indexOf(op);
    if (i < 0) continue;
    const key = expr.slice(0, i).trim();
    if (!KEY.test(key)) throw new ConstraintError(`key '${key}' is invalid`);
    const value = expr.slice(i + op.length).trim();
    if (!VALUE.test(value)) throw new ConstraintError(`value '${value}' is invalid`);
    return { key, op, value };
  }
  throw new ConstraintError(`constraint expected one operator from ${OPERATORS.join(', ')}`);
}

function matchValue(c: Constraint, actual: string): boolean {
  const eq = c.value.toLowerCase() === actual.toLowerCase();
  return c.op === '==' ? eq : !eq;
}

const NODE_LABELS = 'node.labels.';
const ENGINE_LABELS = 'engine.labels.';

/** The address part of a node's Status.Addr (which may carry a port). */
function nodeIp(n: Node): string {
  const a = n.Status.Addr ?? '';
  return a.replace(/:\d+$/, '');
}

function matchIp(c: Constraint, n: Node): boolean {
  const ip = nodeIp(n);
  let within: boolean;
  try {
    if (c.value.includes('/')) within = ip !== '' && contains(parseSubnet(c.value), ip);
    else {
      parseIp(c.value);
      within = ip === c.value;
    }
  } catch {
    return false; // malformed address or network never matches
  }
  return c.op === '==' ? within : !within;
}

export function nodeMatches(constraints: Constraint[], n: Node): boolean {
  for (const c of constraints) {
    const key = c.key.toLowerCase();
    const d = n.Description;
    let ok: boolean;
    if (key === 'node.id') ok = matchValue(c, n.ID);
    else if (key === 'node.hostname') ok = matchValue(c, d?.Hostname ?? '');
    else if (key === 'node.ip') ok = matchIp(c, n);
    else if (key === 'node.role') ok = matchValue(c, n.Spec.Role);
    else if (key === 'node.platform.os') ok = matchValue(c, d?.Platform?.OS ?? '');
    else if (key === 'node.platform.arch') ok = matchValue(c, d?.Platform?.Architecture ?? '');
    else if (key.length > NODE_LABELS.length && key.startsWith(NODE_LABELS)) {
      // The label name itself is case sensitive.
      ok = matchValue(c, n.Spec.Labels?.[c.key.slice(NODE_LABELS.length)] ?? '');
    } else if (key.length > ENGINE_LABELS.length && key.startsWith(ENGINE_LABELS)) {
      ok = matchValue(c, d?.Engine?.Labels?.[c.key.slice(ENGINE_LABELS.length)] ?? '');
    } else ok = false; // unknown key
    if (!ok) return false;
  }
  return true;
}
