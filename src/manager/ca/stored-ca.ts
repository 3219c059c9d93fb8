import { crossSignRoot, type RootCAMaterial } from './root-ca.js';

/** Where the CA (its keys sealed with the swarm's data key) lives in etcd. */
export const CA_KEY = '/shoal/ca';

/** The CA as stored in etcd: the signing root, and every root still trusted (during a rotation: new and old). */
export interface StoredCA extends RootCAMaterial {
  trust?: string[];
  /** During a rotation: the new root cross-signed by the old one, sent after each issued leaf. */
  intermediate?: string;
  /**
   * Roots a finished rotation stopped trusting. New connections are refused them (the TLS
   * handshake checks the current trust), but a connection made while they were trusted stays
   * authenticated, as a TLS session does: agents' sessions survive the rotation.
   */
  retired?: string[];
  /** etcd's own CA (the first root): etcd peers keep trusting each other through rotations. */
  etcd?: RootCAMaterial;
  /**
   * During a rotation: the root the cluster still shows (and its join tokens name) until the
   * rotation ends. It cross-signs every new root, a second rotation's too, so whoever trusts
   * only it verifies the certificates issued meanwhile.
   */
  rotatingFrom?: RootCAMaterial;
  /**
   * The CA of Engine API client certificates (`shoal cert create`), apart from the root: a
   * client certificate must never pass as a node or etcd peer, and survives root rotations.
   */
  apiClients?: RootCAMaterial;
}

/** Whether a rotation is under way (older roots still trusted; stores from before rotatingFrom have only trust). */
export function caRotating(ca: StoredCA): boolean {
  return !!ca.rotatingFrom || (ca.trust?.length ?? 0) > 1;
}

/**
 * `swarm ca --rotate`: `next` signs from now on; nodes trust the new and the old roots until the
 * rotation ends. A rotation started during another one replaces it, cross-signed by the root
 * still shown (SwarmKit signs with the original signer too).
 */
export async function startRotation(current: StoredCA, next: RootCAMaterial): Promise<StoredCA> {
  const from = current.rotatingFrom ?? { certPem: current.certPem, keyPem: current.keyPem };
  return {
    ...next,
    trust: [next.certPem, ...new Set([current.certPem, ...(current.trust ?? [])])],
    intermediate: await crossSignRoot(next, from),
    rotatingFrom: from,
    retired: current.retired,
    apiClients: current.apiClients,
    etcd: current.etcd ?? { certPem: current.certPem, keyPem: current.keyPem },
  };
}

/** Ends a rotation: only the signing root stays trusted; the others are retired. */
export function finishRotation(current: StoredCA): StoredCA {
  const dropped = (current.trust ?? []).filter((p) => p !== current.certPem);
  // The last few retired roots are enough: older ones' connections are long gone.
  const retired = [...new Set([...dropped, ...(current.retired ?? [])])].slice(0, 4);
  return { ...current, trust: [current.certPem], intermediate: undefined, rotatingFrom: undefined, retired };
}

/**
 * The roots nodes trust, the one the cluster shows first (a node's TLSInfo.TrustRoot, which
 * `docker swarm ca` compares with the cluster's): during a rotation the old root, then the new.
 */
export function trustedRoots(ca: StoredCA, shownRoot: string | undefined): string {
  const roots = [...new Set([ca.certPem, ...(ca.trust ?? [])])];
  const first = roots.includes(shownRoot ?? '') ? [shownRoot!] : [];
  return [...new Set([...first, ...roots])].join('');
}
