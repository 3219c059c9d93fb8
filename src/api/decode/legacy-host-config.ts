/**
 * HostConfig fields at the root of a container create body (API < 1.24 clients sent them
 * there). dockerd 20.10 still reads them at every API version: its ContainerConfigWrapper embeds
 * container.HostConfig beside the inner `HostConfig`, and getHostConfig (runconfig) merges.
 */
import type { HostConfig } from '../../engine/containers/record.js';
import { GoDecoder } from './go-decode.js';
import type { JsonNode } from './json-tree.js';
import type { TypeNode } from './schema.js';
import { SCHEMA } from './schema.generated.js';

const hostFields = (SCHEMA.defs.HostConfig as Extract<TypeNode, { k: 'struct' }>).fields;
/** The wrapper's root as Go sees it for these fields: the embedded HostConfig's, plus the deprecated `Cpuset`. */
const ROOT = 'runconfig.ContainerConfigWrapper';
const decoder = new GoDecoder({
  source: SCHEMA.source,
  defs: {
    ...SCHEMA.defs,
    [ROOT]: { k: 'struct', go: 'runconfig.ContainerConfigWrapper', fields: { ...hostFields, Cpuset: { k: 'string' } } },
  },
});
/** The root values that fill in an inner HostConfig's zero ones (getHostConfig). */
const FILLED_FROM_ROOT = ['Memory', 'MemorySwap', 'CpuShares', 'CpusetCpus', 'VolumeDriver'] as const;

const isZero = (v: unknown) => v === undefined || v === null || v === 0 || v === '';

/**
 * The HostConfig dockerd uses for a create body `tree` whose inner `HostConfig` decoded to
 * `inner`: the root one when there is no inner; else the inner, with Memory, MemorySwap,
 * CpuShares, CpusetCpus and VolumeDriver taken from the root where the inner has none; then
 * `Cpuset` (root) for CpusetCpus when still empty. Type errors are Go's (JsonTypeError).
 */
export function effectiveHostConfig(tree: JsonNode, inner: HostConfig | undefined): HostConfig | undefined {
  const { Cpuset, ...root } = decoder.decode(tree, ROOT) as HostConfig & { Cpuset?: string };
  // Go allocates the embedded struct as soon as one of its fields is in the body.
  const hasRoot = Object.keys(root).length > 0;
  let hc: HostConfig | undefined = inner;
  if (!hc && hasRoot) hc = root;
  else if (hc && hasRoot) {
    hc = { ...hc };
    for (const k of FILLED_FROM_ROOT) if (!isZero(root[k]) && isZero(hc[k])) hc[k] = root[k];
  }
  if (hc && Cpuset && isZero(hc.CpusetCpus)) hc = { ...hc, CpusetCpus: Cpuset };
  return hc;
}
