import type { PortConfig, Service } from '../../cluster/types.js';

/** Dynamic published ports, as Docker's (swarmkit allocator/portallocator.go). */
export const DYNAMIC_PORT_START = 30000;
export const DYNAMIC_PORT_END = 32767;

const portKey = (p: PortConfig) => `${p.Protocol ?? 'tcp'}/${p.PublishedPort}`;

/**
 * Published ports of ingress mode are cluster-wide: one service per protocol/port. Ports the
 * user chose are taken as given (the API refuses conflicts); PublishedPort 0 takes the next
 * free port in 30000-32767 and keeps it across updates. Host-mode ports are the node's
 * business (the scheduler's host-port filter), not allocated here.
 */
export class PortAllocator {
  private readonly used = new Set<string>();

  /** Marks the ports already allocated to services. */
  constructor(services: Service[]) {
    for (const s of services)
      for (const p of s.Endpoint?.Ports ?? []) if (isIngress(p) && p.PublishedPort) this.used.add(portKey(p));
  }

  /** The ports `service` should have, reusing what it already holds. Throws when the range is exhausted. */
  allocate(service: Service): PortConfig[] {
    const spec = service.Spec.EndpointSpec?.Ports ?? [];
    const previous = service.Endpoint?.Ports ?? [];
    const out: PortConfig[] = [];
    const mine = new Set(previous.filter((p) => isIngress(p) && p.PublishedPort).map(portKey));
    for (const p of spec) {
      const c: PortConfig = { ...p, Protocol: p.Protocol ?? 'tcp', PublishMode: p.PublishMode ?? 'ingress' };
      if (!isIngress(c)) {
        out.push({ ...c, PublishedPort: c.PublishedPort ?? 0 });
        continue;
      }
      if (c.PublishedPort) {
        this.used.add(portKey(c));
        out.push(c);
        continue;
      }
      // Sticky: the same target keeps the port it got before.
      const prev = previous.find(
        (q) =>
          isIngress(q) &&
          q.TargetPort === c.TargetPort &&
          (q.Protocol ?? 'tcp') === c.Protocol &&
          q.Name === c.Name &&
          !spec.some((s) => s.PublishedPort === q.PublishedPort && (s.Protocol ?? 'tcp') === c.Protocol) &&
          !out.some((o) => o.PublishedPort === q.PublishedPort && o.Protocol === c.Protocol),
      );
      if (prev?.PublishedPort && mine.has(portKey(prev))) {
        out.push({ ...c, PublishedPort: prev.PublishedPort });
        continue;
      }
      out.push({ ...c, PublishedPort: this.next(c.Protocol!) });
    }
    return out;
  }

  private next(protocol: string): number {
    for (let p = DYNAMIC_PORT_START; p <= DYNAMIC_PORT_END; p++) {
      const k = `${protocol}/${p}`;
      if (!this.used.has(k)) {
        this.used.add(k);
        return p;
      }
    }
    throw new Error(`no free published port in ${DYNAMIC_PORT_START}-${DYNAMIC_PORT_END}`);
  }
}

export function isIngress(p: PortConfig): boolean {
  return (p.PublishMode ?? 'ingress') === 'ingress';
}
