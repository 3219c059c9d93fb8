import fs from 'node:fs';
import { createHash, createPrivateKey, X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import type { SecureContextOptions } from 'node:tls';
import type { Logger } from '../util/log.js';

/** dockerd's `--tlscacert`, `--tlscert`, `--tlskey`. */
export interface ApiTlsFiles {
  ca: string;
  cert: string;
  key: string;
}

/** A start-up mistake in the TLS flags: shoald prints the message and exits. */
export class TlsConfigError extends Error {}

function read(flag: string, file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new TlsConfigError(
      `${flag} ${file}: cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
    );
  }
}

/** Every certificate of a PEM bundle. */
export function pemCertificates(bundle: string): string[] {
  return bundle.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g)?.map((p) => p + '\n') ?? [];
}

function parseCert(flag: string, file: string, pem: string): X509Certificate {
  try {
    return new X509Certificate(pem);
  } catch (e) {
    throw new TlsConfigError(`${flag} ${file}: not a PEM certificate (${(e as Error).message})`);
  }
}

/**
 * Reads and checks the three files: the CA bundle holds only CA certificates, the certificate
 * parses, and the key is the certificate's. What a client would only find at its first
 * handshake fails the daemon's start instead.
 */
export function loadTlsFiles(f: ApiTlsFiles): { ca: string; cert: string; key: string } {
  const ca = read('--tlscacert', f.ca);
  const cert = read('--tlscert', f.cert);
  const key = read('--tlskey', f.key);
  const cas = pemCertificates(ca);
  if (!cas.length) throw new TlsConfigError(`--tlscacert ${f.ca}: no PEM certificate in the file`);
  for (const pem of cas) {
    const c = parseCert('--tlscacert', f.ca, pem);
    if (!c.ca)
      throw new TlsConfigError(
        `--tlscacert ${f.ca}: certificate "${c.subject.replace(/\n/g, ', ')}" is not a CA (no basicConstraints CA:TRUE)`,
      );
  }
  const certPem = pemCertificates(cert)[0];
  if (!certPem) throw new TlsConfigError(`--tlscert ${f.cert}: no PEM certificate in the file`);
  const leaf = parseCert('--tlscert', f.cert, certPem);
  let privateKey;
  try {
    privateKey = createPrivateKey(key);
  } catch (e) {
    throw new TlsConfigError(`--tlskey ${f.key}: not a PEM private key (${(e as Error).message})`);
  }
  if (!leaf.checkPrivateKey(privateKey))
    throw new TlsConfigError(`--tlskey ${f.key} does not match the certificate in --tlscert ${f.cert}`);
  return { ca, cert, key };
}

/** True for addresses only this machine reaches: plain HTTP there is as safe as the unix socket. */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '');
  if (h === 'localhost') return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  return h === '::1';
}

/**
 * The server side of the API's TLS: the daemon's certificate and the CAs its clients may come
 * from (the `--tlscacert` bundle and, once the node is in a swarm, the swarm's roots, which
 * sign `shoal cert create`'s certificates). Files are re-read every few seconds, so renewed
 * certificates (`shoal machine regenerate-certs`) and a newly joined swarm apply to new
 * connections without a restart; a change that fails the checks is logged and ignored.
 */
export class ApiTls {
  private current: SecureContextOptions;
  private digest: string;
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly files: ApiTlsFiles,
    /** PEM bundle of further client CAs (the swarm's roots), or undefined. */
    private readonly extraClientCAs: () => string | undefined,
    private readonly log: Logger,
  ) {
    const { options, digest } = this.load();
    this.current = options;
    this.digest = digest;
  }

  /** The CA bundle clients verify this daemon with (`--tlscacert`). */
  serverCA(): string {
    return fs.readFileSync(this.files.ca, 'utf8');
  }

  options(): SecureContextOptions {
    return this.current;
  }

  private load(): { options: SecureContextOptions; digest: string } {
    const { ca, cert, key } = loadTlsFiles(this.files);
    const extra = this.extraClientCAs() ?? '';
    const digest = createHash('sha256').update(ca).update(cert).update(key).update(extra).digest('hex');
    return { options: { ca: [...pemCertificates(ca), ...pemCertificates(extra)], cert, key }, digest };
  }

  private apply?: (o: SecureContextOptions) => void;
  private failed?: string;

  /** Calls `apply` whenever the files or the swarm's roots change (checked every `everyMs`, and on reload()). */
  watch(apply: (o: SecureContextOptions) => void, everyMs = 2000): void {
    this.apply = apply;
    this.timer = setInterval(() => this.reload(), everyMs);
    this.timer.unref();
  }

  /** Re-reads the files now (shoald does on SIGHUP). */
  reload(): void {
    try {
      const next = this.load();
      if (next.digest === this.digest) return;
      this.digest = next.digest;
      this.current = next.options;
      this.failed = undefined;
      this.apply?.(next.options);
      this.log.info('API TLS certificates reloaded');
    } catch (err) {
      const msg = (err as Error).message;
      // Once per distinct failure, not every few seconds.
      if (msg !== this.failed)
        this.log.warn({ err: msg }, 'API TLS files changed but fail the checks; keeping the previous ones');
      this.failed = msg;
    }
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
