import type { IncomingMessage } from 'node:http';
import { forbidden } from '../../util/errors.js';
import type { Logger } from '../../util/log.js';
import type { AuditLog } from './audit.js';
import { identify, type ClientIdentity, type RoleMap } from './identity.js';
import { actionName, allows, isAudited, requiredRole, type Role } from './roles.js';

/** What the server tells the guard about one call once it is answered. */
export interface CallRecord {
  method: string;
  /** The route pattern, e.g. `/services/:id/update`. */
  pattern: string;
  path: string;
  params: Record<string, string>;
  status: number;
  /** The connection was taken over (attach, exec) or the response streams. */
  streamed: boolean;
  /** The ID of the object a create call made. */
  created?: string;
}

/** The API's access hook: identify the caller, check the role, write the audit log. */
export class AccessControl {
  constructor(
    private readonly audit: AuditLog | undefined,
    private readonly roles: RoleMap | undefined,
    private readonly log: Logger,
  ) {}

  identify(req: IncomingMessage): ClientIdentity {
    return identify(req, this.roles);
  }

  /** Throws Docker's 403 naming the role and the action when the caller may not make the call. */
  authorize(who: ClientIdentity, method: string, pattern: string): void {
    this.require(who, requiredRole(method, pattern), actionName(method, pattern));
  }

  /** Throws the 403 when `who` may not do `action`, which needs `needed`. */
  require(who: ClientIdentity, needed: Role, action: string): void {
    if (allows(who.role, needed)) return;
    if (!who.role)
      throw forbidden(
        `access denied: ${who.name} has no API role (admin, operator or viewer); "${action}" needs ${needed}`,
      );
    throw forbidden(`access denied: role ${who.role} (${who.name}) may not "${action}"; it needs ${needed}`);
  }

  /** Appends the call to the audit log when it changes state or opens a container. */
  record(who: ClientIdentity, call: CallRecord): void {
    if (!this.audit || !isAudited(call.method, call.pattern)) return;
    const object = call.params.id ?? call.params.name ?? call.created;
    try {
      this.audit.record({
        time: new Date().toISOString(),
        client: who.name,
        ...(who.serial ? { serial: who.serial } : {}),
        ...(who.role ? { role: who.role } : {}),
        method: call.method,
        path: call.path,
        ...(object ? { object } : {}),
        status: call.status,
        outcome: call.status === 403 ? 'denied' : call.status >= 400 ? 'failed' : call.streamed ? 'stream' : 'ok',
      });
    } catch (err) {
      this.log.error({ err }, 'audit log write failed');
    }
  }
}
