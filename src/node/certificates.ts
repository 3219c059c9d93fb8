import fs from 'node:fs';
import { renewalTime } from '../manager/ca/root-ca.js';
import { certIdentity, createCsr, firstPem, generateKeyPair, privateKeyToPem } from '../cluster/pki.js';
import { X509Certificate } from 'node:crypto';
import { clientCredentials, RpcClient, type RenewResponse } from '../cluster/rpc.js';
import type { NodeCore } from './core.js';

/** This node's certificate: renewal at 50–80 % of its life, root CA rotation (trust), the API client CA. */
export class NodeCertificates {
  private renewTimer?: NodeJS.Timeout;
  /** A trust change under way (reconcileTrust): one at a time. */
  private trustChange?: Promise<void>;

  constructor(private readonly core: NodeCore) {}

  /** Stops the renewal timer (the node stops or leaves). */
  stopRenewal(): void {
    clearTimeout(this.renewTimer);
  }

  /** Renews this node's certificate at a random point between 50 % and 80 % of its life. */
  scheduleRenewal(delayMs?: number): void {
    clearTimeout(this.renewTimer);
    if (!this.core.state) return;
    let delay = delayMs;
    if (delay === undefined) {
      const id = certIdentity(fs.readFileSync(this.core.files.cert, 'utf8'));
      delay = renewalTime(id.notBefore, id.notAfter).getTime() - Date.now();
    }
    this.renewTimer = setTimeout(
      () => {
        this.core
          .exclusive(() => this.renewCertificate())
          .then(() => this.scheduleRenewal())
          .catch((err) => {
            this.core.log.warn({ err }, 'certificate renewal failed; retrying');
            this.scheduleRenewal(2000);
          });
      },
      Math.min(Math.max(delay, 1000), 2 ** 31 - 1),
    );
    this.renewTimer.unref();
  }

  /** A new key and certificate for the same identity and role, from a manager's CA. */
  async renewCertificate(): Promise<void> {
    const s = this.core.state;
    if (!s) return;
    const remote = this.core.session?.current ?? s.managers[0]?.addr;
    if (!remote) throw new Error('no manager to renew the certificate with');
    const issued = await this.requestCertificate(remote);
    if (issued.renewed.role !== s.role) return; // a role change is under way; it brings its own certificate
    this.installCertificate(issued);
    this.core.manager?.reloadTls();
    this.core.log.info('node certificate renewed');
    // The managers follow a root rotation by the issuer in each node's TLSInfo: tell them within
    // the session (new connections already use the new certificate; open ones go on).
    await this.core.session?.updateDescription();
  }

  /** A new key, and a certificate for it from `remote`'s CA: this node's identity, the role the managers decided. */
  async requestCertificate(remote: string): Promise<{ renewed: RenewResponse; keyPem: string }> {
    const f = this.core.files;
    const keys = await generateKeyPair();
    const ca = new RpcClient(
      'CA',
      remote,
      clientCredentials(fs.readFileSync(f.ca), fs.readFileSync(f.cert), fs.readFileSync(f.key)),
    );
    try {
      const renewed = await ca.call('RenewNodeCertificate', { csr: await createCsr(keys) }, 15_000);
      return { renewed, keyPem: await privateKeyToPem(keys.privateKey) };
    } finally {
      ca.close();
    }
  }

  /** Puts a certificate from requestCertificate in place; managers' etcd certificate too (etcd reads its files per connection). */
  installCertificate({ renewed, keyPem }: { renewed: RenewResponse; keyPem: string }): void {
    this.core.writeCerts(fs.readFileSync(this.core.files.ca, 'utf8'), renewed.certificate, keyPem);
    if (renewed.etcdCertificate && renewed.etcdCA) this.core.writeEtcdCerts(renewed.etcdCA, renewed.etcdCertificate);
  }

  /** Stores the API client CA the managers sent (the API's TLS reads it: apiClientCAPem). */
  keepApiClientCA(pem: string | undefined): void {
    if (!pem || !this.core.state) return;
    const f = this.core.files.apiClientCa;
    if (fs.existsSync(f) && fs.readFileSync(f, 'utf8') === pem) return;
    fs.mkdirSync(this.core.certDir, { recursive: true, mode: 0o700 });
    fs.writeFileSync(f + '.tmp', pem);
    fs.renameSync(f + '.tmp', f);
    this.core.log.info('API client CA stored');
  }

  /** The swarm's API client CA certificate, while this node is in a swarm; undefined otherwise. */
  apiClientCAPem(): string | undefined {
    if (!this.core.state) return undefined;
    try {
      return fs.readFileSync(this.core.files.apiClientCa, 'utf8');
    } catch {
      return undefined;
    }
  }

  /**
   * Follows the swarm's trust bundle (root CA rotation): store it, so new connections trust what
   * the managers trust (during a rotation the old and the new root, the one the cluster shows
   * first), and get a certificate from the signing root. The session stays: the new TLSInfo is
   * reported within it.
   */
  reconcileTrust(bundle: string | undefined, signingRoot?: string): void {
    if (!bundle || !this.core.state || this.trustChange) return;
    const signing = new X509Certificate(signingRoot ?? firstPem(bundle));
    const fromSigningRoot = () => new X509Certificate(fs.readFileSync(this.core.files.cert)).verify(signing.publicKey);
    if (fs.readFileSync(this.core.files.ca, 'utf8') === bundle && fromSigningRoot()) return;
    this.trustChange = this.core
      .exclusive(async () => {
        const f = this.core.files;
        if (!this.core.state) return;
        if (fs.readFileSync(f.ca, 'utf8') !== bundle) {
          fs.writeFileSync(f.ca, bundle);
          this.core.log.info('swarm trust roots changed');
        }
        if (!fromSigningRoot()) await this.renewCertificate();
        // The managers read TrustRoot (docker swarm ca's progress) and the issuer from the description.
        else await this.core.session?.updateDescription();
      })
      .catch((err) => this.core.log.warn({ err }, 'trust update failed; will retry on the next session message'))
      .finally(() => (this.trustChange = undefined));
  }
}
