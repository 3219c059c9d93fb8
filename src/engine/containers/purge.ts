import type { DaemonConfig } from '../config.js';

// STUB: replaced by the container implementation.
/**
 * Removes every container, conmon process and mount a daemon with these roots made, even
 * after a crash (the daemon itself must already be stopped). Used by tests and `shoal machine rm/prune`.
 */
export async function purgeDaemonState(cfg: Pick<DaemonConfig, 'dataRoot' | 'execRoot'>): Promise<void> {
  void cfg;
}
