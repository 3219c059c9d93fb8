import type { Service } from '../../cluster/types.js';
import { parseConstraints, type Constraint } from '../scheduler/constraint.js';

/** A constraint no node meets. */
const NO_NODE: Constraint = { key: '', op: '==', value: '' };

/**
 * The constraints that choose the nodes of a service with one task per node (global services
 * and global jobs): the service's own, or, when they do not parse, one that no node meets.
 */
export function perNodeConstraints(service: Service): Constraint[] {
  try {
    return parseConstraints(service.Spec.TaskTemplate.Placement?.Constraints);
  } catch {
    return [NO_NODE];
  }
}
