import fs from 'node:fs';
import path from 'node:path';
import { createApiCA, signApiCert, type CertAndKey } from '../cluster/api-certs.js';

/** The Engine API's TCP port with TLS, as docker-machine's machines. */
export const API_TLS_PORT = 2376;

/**
 * What docker-machine keeps per machine: one CA for the whole lab (`<lab>/certs`), and in each
 * machine's `certs/` its server certificate and key (for its address) and a client certificate
 * (OU admin), with ca.pem: the directory DOCKER_CERT_PATH names.
 */
export function labCertPaths(labDir: string) {
  const dir = path.join(labDir, 'certs');
  return { dir, ca: path.join(dir, 'ca.pem'), caKey: path.join(dir, 'ca-key.pem') };
}

export function machineCertPaths(machineDir: string) {
  const dir = path.join(machineDir, 'certs');
  return {
    dir,
    ca: path.join(dir, 'ca.pem'),
    cert: path.join(dir, 'cert.pem'),
    key: path.join(dir, 'key.pem'),
    server: path.join(dir, 'server.pem'),
    serverKey: path.join(dir, 'server-key.pem'),
  };
}

/** The lab's CA, made on first use. */
async function labCA(labDir: string): Promise<CertAndKey> {
  const p = labCertPaths(labDir);
  if (fs.existsSync(p.ca) && fs.existsSync(p.caKey))
    return { certPem: fs.readFileSync(p.ca, 'utf8'), keyPem: fs.readFileSync(p.caKey, 'utf8') };
  fs.mkdirSync(p.dir, { recursive: true, mode: 0o700 });
  const ca = await createApiCA('shoal-lab-ca');
  fs.writeFileSync(p.caKey, ca.keyPem, { mode: 0o600 });
  fs.writeFileSync(p.ca, ca.certPem);
  return ca;
}

/** Writes a file whole or not at all: the daemon re-reads these files while it runs. */
function writeAtomic(file: string, text: string, mode = 0o644): void {
  fs.writeFileSync(file + '.tmp', text, { mode });
  fs.renameSync(file + '.tmp', file);
}

/**
 * Makes (or with `regenerate`, remakes) a machine's certificates. The server certificate names
 * the machine's lab address, localhost and 127.0.0.1. Returns the paths.
 */
export async function ensureMachineCerts(
  labDir: string,
  machineDir: string,
  machine: string,
  address: string,
  regenerate = false,
): Promise<ReturnType<typeof machineCertPaths>> {
  const p = machineCertPaths(machineDir);
  if (!regenerate && [p.ca, p.cert, p.key, p.server, p.serverKey].every((f) => fs.existsSync(f))) return p;
  const ca = await labCA(labDir);
  fs.mkdirSync(p.dir, { recursive: true, mode: 0o700 });
  const server = await signApiCert(ca, {
    subject: `CN=${machine}`,
    usage: 'server',
    names: [address, machine, 'localhost', '127.0.0.1'],
  });
  const client = await signApiCert(ca, { subject: `CN=shoal-machine-${machine}, OU=admin`, usage: 'client' });
  writeAtomic(p.ca, ca.certPem);
  // Key before certificate: the daemon's check (key matches certificate) passes once both are new.
  writeAtomic(p.serverKey, server.keyPem!, 0o600);
  writeAtomic(p.server, server.certPem);
  writeAtomic(p.key, client.keyPem!, 0o600);
  writeAtomic(p.cert, client.certPem);
  return p;
}

/** shoald's flags for the TLS listener on every address of the machine. */
export function tlsDaemonArgs(p: ReturnType<typeof machineCertPaths>): string[] {
  return [
    '-H',
    `tcp://0.0.0.0:${API_TLS_PORT}`,
    '--tlsverify',
    '--tlscacert',
    p.ca,
    '--tlscert',
    p.server,
    '--tlskey',
    p.serverKey,
  ];
}
