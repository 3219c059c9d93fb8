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
import { NodeCore } from './core.js';

/** Autolock: the manager's TLS key and DEK sealed with the swarm's unlock key, and `swarm unlock`. */
export abstract class NodeUnlock extends NodeCore {
  /** The DEK from disk: undefined when absent (a swarm from before it); sealed needs the unlock key. */
  protected readDek(kek?: Buffer): Buffer | undefined {
    let text: string;
    try {
      text = fs.readFileSync(this.files.dek, 'utf8').trim();
    } catch {
      return undefined;
    }
    if (text.startsWith('plain:')) return Buffer.from(text.slice(6), 'base64');
    if (text.startsWith('sealed:') && kek) return openValue(kek, Buffer.from(text.slice(7)));
    return undefined;
  }

  /** Writes the DEK as autolock wants it now; removes it when this node holds none. */
  protected writeDek(): void {
    if (!this.dek) {
      fs.rmSync(this.files.dek, { force: true });
      return;
    }
    const tmp = this.files.dek + '.tmp';
    fs.writeFileSync(
      tmp,
      this.kek ? 'sealed:' + sealValue(this.kek, this.dek) : 'plain:' + this.dek.toString('base64'),
      { mode: 0o600 },
    );
    fs.renameSync(tmp, this.files.dek);
  }

  /** Follows the swarm's unlock key: seals this manager's TLS key with it, or unseals. */
  protected applyUnlockKey(key: Buffer | undefined): void {
    if (!this.state || this.locked) return;
    if (key && this.kek?.equals(key) && fs.existsSync(this.files.sealedKey)) return;
    this.kek = key;
    if (key) {
      const tmp = this.files.sealedKey + '.tmp';
      fs.writeFileSync(tmp, sealPrivateKey(fs.readFileSync(this.files.key, 'utf8'), key), { mode: 0o600 });
      fs.renameSync(tmp, this.files.sealedKey);
      this.writeDek();
    } else {
      this.writeDek();
      fs.rmSync(this.files.sealedKey, { force: true });
    }
  }

  /** `swarm update --autolock` / `unlock-key --rotate`: the new key (or none) for every manager. */
  async setUnlockKey(key: Buffer | undefined): Promise<void> {
    const m = this.requireManager();
    // A new key-encrypting key gets a new data key too (as SwarmKit's raft DEK): the old one
    // may have lain on disk unsealed, or sealed with the old unlock key.
    if (key) await m.rotateDataKey();
    await m.setUnlockKey(key);
    this.applyUnlockKey(key);
  }

  /** `swarm unlock-key`: Docker's text form, empty when autolock is off. */
  async unlockKey(): Promise<string> {
    const m = this.requireManager();
    const k = await m.unlockKey();
    return k ? humanReadableKey(k) : '';
  }

  /** `swarm unlock`: opens the sealed TLS key and starts what a manager runs. */
  unlock(keyText: string): Promise<void> {
    return this.exclusive(async () => {
      if (!this.state) throw unavailable(ERR_NO_SWARM);
      if (!this.locked) throw new ApiError(409, 'swarm is not locked');
      const key = parseHumanReadableKey(keyText);
      const plain = openPrivateKey(fs.readFileSync(this.files.sealedKey, 'utf8'), key);
      const dek = this.readDek(key);
      fs.writeFileSync(this.files.key, plain, { mode: 0o600 });
      this.locked = false;
      this.kek = key;
      this.dek = dek;
      try {
        await this.startManager();
        this.startSession();
      } catch (e) {
        this.log.error({ err: e }, 'could not start the manager after unlock');
        throw e;
      }
    });
  }
}
