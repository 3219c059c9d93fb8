import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import type { Command } from 'commander';
import { createKeyAndCsr } from '../cluster/api-certs.js';

/** A refusal from the daemon or a mistake in the arguments: printed alone. */
export class CertCommandError extends Error {}

/** Where DOCKER_HOST points, with TLS from DOCKER_TLS_VERIFY / DOCKER_CERT_PATH as the docker CLI reads them. */
export function dockerTarget(env: NodeJS.ProcessEnv): http.RequestOptions & { tls: boolean } {
  const host = env.DOCKER_HOST || 'unix:///run/shoal/shoal.sock';
  const url = new URL(host);
  if (url.protocol === 'unix:') return { socketPath: url.pathname, tls: false };
  if (url.protocol !== 'tcp:') throw new CertCommandError(`DOCKER_HOST ${host}: want unix:// or tcp://`);
  const verify = !!env.DOCKER_TLS_VERIFY && env.DOCKER_TLS_VERIFY !== '0';
  const base = { host: url.hostname, port: Number(url.port || (verify ? 2376 : 2375)) };
  if (!verify) return { ...base, tls: false };
  const dir = env.DOCKER_CERT_PATH || path.join(os.homedir(), '.docker');
  const read = (f: string) => fs.readFileSync(path.join(dir, f));
  return {
    ...base,
    tls: true,
    ...({ ca: read('ca.pem'), cert: read('cert.pem'), key: read('key.pem') } as http.RequestOptions),
  };
}

function post(
  target: ReturnType<typeof dockerTarget>,
  p: string,
  body: unknown,
): Promise<{ status: number; json: Record<string, unknown> }> {
  return request(target, 'POST', p, body);
}

/** One JSON call to the daemon DOCKER_HOST names; the answer's status and JSON body. */
export function request(
  target: ReturnType<typeof dockerTarget>,
  method: string,
  p: string,
  body?: unknown,
): Promise<{ status: number; json: Record<string, unknown> }> {
  const { tls, ...opts } = target;
  const data = body === undefined ? '' : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = (tls ? https : http).request(
      {
        ...opts,
        method,
        path: p,
        headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(data) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString();
          let json: Record<string, unknown> = {};
          try {
            json = text ? (JSON.parse(text) as Record<string, unknown>) : {};
          } catch {
            json = { message: text };
          }
          resolve({ status: res.statusCode ?? 0, json });
        });
      },
    );
    req.on('error', (e) => reject(new CertCommandError(`cannot reach the daemon: ${e.message}`)));
    req.end(data);
  });
}

/** `shoal cert create`: an API client certificate from the swarm's managers, ready for DOCKER_CERT_PATH. */
export function certCommands(program: Command): void {
  const cert = program
    .command('cert')
    .description('Engine API client certificates signed by the swarm (DOCKER_HOST points at a manager; admin only)');
  cert
    .command('create')
    .description(
      'write ca.pem, cert.pem and key.pem for NAME with ROLE into DIR; the key is made here and never leaves',
    )
    .argument('<name>')
    .requiredOption('--role <role>', 'admin, operator or viewer')
    .requiredOption('--out <dir>', 'directory to write ca.pem, cert.pem and key.pem into (DOCKER_CERT_PATH)')
    .action(async (name: string, o: { role: string; out: string }) => {
      const { keyPem, csrPem } = await createKeyAndCsr(name);
      const r = await post(dockerTarget(process.env), '/shoal/certs', { Name: name, Role: o.role, CSR: csrPem });
      if (r.status !== 201)
        throw new CertCommandError(`Error response from daemon: ${String(r.json.message ?? r.status)}`);
      fs.mkdirSync(o.out, { recursive: true, mode: 0o700 });
      fs.writeFileSync(path.join(o.out, 'key.pem'), keyPem, { mode: 0o600 });
      fs.writeFileSync(path.join(o.out, 'cert.pem'), String(r.json.Certificate));
      const ca = String(r.json.CA ?? '');
      if (ca) fs.writeFileSync(path.join(o.out, 'ca.pem'), ca);
      else
        console.error(
          "warning: the daemon serves no TLS, so it named no CA for ca.pem; copy the CA that signed the daemons' certificates there",
        );
      console.log(
        `Wrote ${o.out}/{ca.pem,cert.pem,key.pem} for ${name} (role ${o.role}). Use: export DOCKER_TLS_VERIFY=1 DOCKER_CERT_PATH=${path.resolve(o.out)}`,
      );
    });
}
