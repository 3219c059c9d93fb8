import { randomBytes, timingSafeEqual } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

/**
 * The dashboard's login token: 32 random bytes (base64url) kept in `<data root>/dashboard/token`
 * (mode 0600), made on first use. `shoal dashboard token --rotate` replaces it; pages logged in
 * with the old one get 401 on their next request, and their open streams are ended.
 */
export class DashboardToken {
  private readonly file: string;
  private cached?: string;
  private readonly rotated = new Set<() => void>();

  constructor(dataRoot: string) {
    this.file = path.join(dataRoot, 'dashboard', 'token');
  }

  get(): string {
    if (this.cached) return this.cached;
    try {
      const t = fs.readFileSync(this.file, 'utf8').trim();
      if (t) return (this.cached = t);
    } catch {
      /* none yet */
    }
    return this.rotate();
  }

  rotate(): string {
    const t = randomBytes(32).toString('base64url');
    fs.mkdirSync(path.dirname(this.file), { recursive: true, mode: 0o700 });
    const tmp = `${this.file}.tmp`;
    fs.writeFileSync(tmp, t + '\n', { mode: 0o600 });
    fs.renameSync(tmp, this.file);
    this.cached = t;
    for (const fn of this.rotated) fn();
    return t;
  }

  /** Calls `fn` after each rotation (the server ends the streams opened with the old token). */
  onRotate(fn: () => void): () => void {
    this.rotated.add(fn);
    return () => this.rotated.delete(fn);
  }

  /** Constant-time comparison, so the answer's timing tells nothing of the token. */
  matches(candidate: string | undefined): boolean {
    if (!candidate) return false;
    const a = Buffer.from(candidate);
    const b = Buffer.from(this.get());
    return a.length === b.length && timingSafeEqual(a, b);
  }
}
