import type { Writable } from 'node:stream';

/** Resolves when `w` can take more ('drain') or never will ('close'), whichever comes first. */
export function drainedOrClosed(w: Writable): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = () => {
      w.off('drain', done);
      w.off('close', done);
      resolve();
    };
    w.once('drain', done);
    w.once('close', done);
  });
}
