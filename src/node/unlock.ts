import fs from 'node:fs';
import { ApiError, unavailable } from '../util/errors.js';
import {
  humanReadableKey,
  openPrivateKey,
  openValue,
  parseHumanReadableKey,
  sealPrivateKey,
  sealValue,
} from '../manager/ca/unlock-key.js';
import { ERR_NO_SWARM } from './swarm-spec.js';
import type { NodeCore, NodeRunner } from './core.js';

/** The keys a manager keeps at rest: the DEK's file, and the TLS key sealed with the unlock key (autolock). */
export class KeysAtRest {
  constructor(private readonly core: NodeCore) {}

  /** The DEK from disk: undefined when absent (a swarm from before it); sealed needs the unlock key. */
  readDek(kek?: Buffer): Buffer | undefined {
    let text: string;
    try {
      text = fs.readFileSync(this.core.files.dek, 'utf8').trim();
    } catch {
      return undefined;
    }
    if (text.startsWith('plain:')) return Buffer.from(text.slice(6), 'base64');
    if (text.startsWith('sealed:') && kek) return openValue(kek, Buffer.from(text.slice(7)));
    return undefined;
  }

  /** Writes the DEK as autolock wants it now; removes it when this node holds none. */
  writeDek(): void {
    const { dek, kek, files } = this.core;
    if (!dek) {
      fs.rmSync(files.dek, { force: true });
      return;
    }
    const tmp = files.dek + '.tmp';
    fs.writeFileSync(tmp, kek ? 'sealed:' + sealValue(kek, dek) : 'plain:' + dek.toString('base64'), {
      mode: 0o600,
    });
    fs.renameSync(tmp, files.dek);
  }

  /** Follows the swarm's unlock key: seals this manager's TLS key with it, or unseals. */
  applyUnlockKey(key: Buffer | undefined): void {
    const c = this.core;
    if (!c.state || c.locked) return;
    if (key && c.kek?.equals(key) && fs.existsSync(c.files.sealedKey)) return;
    c.kek = key;
    if (key) {
      const tmp = c.files.sealedKey + '.tmp';
      fs.writeFileSync(tmp, sealPrivateKey(fs.readFileSync(c.files.key, 'utf8'), key), { mode: 0o600 });
      fs.renameSync(tmp, c.files.sealedKey);
      this.writeDek();
    } else {
      this.writeDek();
      fs.rmSync(c.files.sealedKey, { force: true });
    }
  }
}

/** Autolock's commands: the swarm's unlock key (set, show) and `swarm unlock` of a locked manager. */
export class NodeUnlock {
  constructor(
    private readonly core: NodeCore,
    private readonly keys: KeysAtRest,
    private readonly runner: Pick<NodeRunner, 'startManager' | 'startSession'>,
  ) {}

  /** `swarm update --autolock` / `unlock-key --rotate`: the new key (or none) for every manager. */
  async setUnlockKey(key: Buffer | undefined): Promise<void> {
    const m = this.core.requireManager();
    // A new key-encrypting key gets a new data key too (as SwarmKit's raft DEK): the old one
    // may have lain on disk unsealed, or sealed with the old unlock key.
    if (key) await m.rotateDataKey();
    await m.setUnlockKey(key);
    this.keys.applyUnlockKey(key);
  }

  /** `swarm unlock-key`: Docker's text form, empty when autolock is off. */
  async unlockKey(): Promise<string> {
    const m = this.core.requireManager();
    const k = await m.unlockKey();
    return k ? humanReadableKey(k) : '';
  }

  /** `swarm unlock`: opens the sealed TLS key and starts what a manager runs. */
  unlock(keyText: string): Promise<void> {
    const c = this.core;
    return c.exclusive(async () => {
      if (!c.state) throw unavailable(ERR_NO_SWARM);
      if (!c.locked) throw new ApiError(409, 'swarm is not locked');
      const key = parseHumanReadableKey(keyText);
      const plain = openPrivateKey(fs.readFileSync(c.files.sealedKey, 'utf8'), key);
      const dek = this.keys.readDek(key);
      fs.writeFileSync(c.files.key, plain, { mode: 0o600 });
      c.locked = false;
      c.kek = key;
      c.dek = dek;
      try {
        await this.runner.startManager();
        this.runner.startSession();
      } catch (e) {
        c.log.error({ err: e }, 'could not start the manager after unlock');
        throw e;
      }
    });
  }
}
