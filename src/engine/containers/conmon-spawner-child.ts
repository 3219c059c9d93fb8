/**
 * The conmon spawner's process (see conmon-spawner.ts): spawns each conmon it is asked for
 * and answers with the container's init PID. Small, so its forks are cheap; conmons are its
 * children and it reaps them. It ends with its daemon (the IPC channel closes); the conmons
 * live on, as they do when the daemon itself ends.
 */
import { spawnConmon, type ConmonFiles } from './conmon-spawn.js';

export interface SpawnRequest extends ConmonFiles {
  seq: number;
  args: string[];
}

export type SpawnReply = { seq: number; pid: number } | { seq: number; error: string };

process.on('message', (m: SpawnRequest) => {
  spawnConmon(m.args, m).then(
    (pid) => process.send?.({ seq: m.seq, pid } satisfies SpawnReply),
    (e: unknown) => process.send?.({ seq: m.seq, error: (e as Error).message ?? String(e) } satisfies SpawnReply),
  );
});
process.on('disconnect', () => process.exit(0));
