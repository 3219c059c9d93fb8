import type { Etcd3, Watcher } from 'etcd3';
import type { Logger } from '../util/log.js';
import { openValue, readUnlockKey, sealValue, watchUnlockKey, writeUnlockKey } from './ca/unlock-key.js';
import { DATA_KEY_NEXT, newDataKey, resealAll } from './secrets/data-key.js';

/** How long after a rotation the sweep re-seals what a manager that had not followed yet wrote. */
const DATA_KEY_SWEEP_MS = 3000;

/** What the keys read and write of the manager's options: the DEK is replaced on rotation. */
export interface DataKeyHolder {
  dek?: Buffer;
  onDataKey?: (dek: Buffer) => void;
  log: Logger;
}

/**
 * A manager's view of the swarm's unlock key (autolock) and data-encryption key: it follows
 * both through the store and rotates the DEK when the unlock key changes.
 */
export class ManagerDataKeys {
  private unlockKeyWatch?: Watcher;
  private sweep?: NodeJS.Timeout;

  constructor(
    private readonly o: DataKeyHolder,
    private readonly client: Etcd3,
    private readonly stopping: () => boolean,
    /** A new DEK was adopted: values sealed with it that could not be opened before can be now. */
    private readonly adopted: () => void,
  ) {}

  /** Autolock: the swarm's unlock key now and on every change (undefined: autolock off). */
  async followUnlockKey(fn: (key: Buffer | undefined) => void): Promise<void> {
    // A late event after stop() must not touch a node that is no longer this manager.
    this.unlockKeyWatch = await watchUnlockKey(
      this.client,
      () => this.o.dek,
      (k) => this.stopping() || fn(k),
      (key, value) => {
        if (!this.stopping() && key === DATA_KEY_NEXT && value) this.followDataKey(value);
      },
    );
    // A rotation this manager missed (it was restarting) and whose sweep has not ended yet.
    const next = await this.client.get(DATA_KEY_NEXT).buffer();
    if (next) this.followDataKey(next);
    fn(await readUnlockKey(this.client, this.o.dek));
  }

  /**
   * Rotates the swarm's data-encryption key: everything sealed is re-sealed with a new key in one
   * transaction that also hands the key to the other managers (sealed with the old one); a
   * sweep a few seconds later re-seals what a manager that had not followed yet wrote meanwhile,
   * then deletes the hand-over. After it the old key opens nothing the swarm keeps.
   */
  async rotateDataKey(): Promise<void> {
    const old = this.o.dek;
    if (!old) return; // a swarm from before the DEK keeps storing as it did
    const next = newDataKey();
    const handOver = sealValue(old, next);
    const n = await resealAll(this.client, [old], next, { key: DATA_KEY_NEXT, value: handOver });
    this.adoptDataKey(next);
    this.o.log.info({ resealed: n }, 'data encryption key rotated');
    clearTimeout(this.sweep);
    this.sweep = setTimeout(() => {
      void (async () => {
        // A later rotation (or this manager's end) owns the keys now.
        if (this.stopping() || !this.o.dek?.equals(next)) return;
        await resealAll(this.client, [next, old], next);
        await this.client
          .if(DATA_KEY_NEXT, 'Value', '==', handOver)
          .then(this.client.delete().key(DATA_KEY_NEXT))
          .commit();
      })().catch((err: unknown) => this.o.log.warn({ err }, 'data key rotation sweep failed'));
    }, DATA_KEY_SWEEP_MS);
  }

  unlockKey(): Promise<Buffer | undefined> {
    return readUnlockKey(this.client, this.o.dek);
  }

  setUnlockKey(key: Buffer | undefined): Promise<void> {
    return writeUnlockKey(this.client, this.o.dek, key);
  }

  stop(): void {
    this.unlockKeyWatch?.cancel().catch(() => undefined);
    clearTimeout(this.sweep);
  }

  /** Another manager rotated the data key: take the new one when it was sealed with ours. */
  private followDataKey(sealedNext: Buffer): void {
    if (!this.o.dek) return;
    let next: Buffer;
    try {
      next = openValue(this.o.dek, sealedNext);
    } catch {
      return; // sealed with a key this manager no longer holds: already followed
    }
    this.adoptDataKey(next);
  }

  private adoptDataKey(next: Buffer): void {
    if (this.o.dek?.equals(next)) return;
    this.o.dek = next;
    this.o.onDataKey?.(next);
    this.adopted();
  }
}
