/**
 * A client of the distribution API v2 (what `docker pull/push` speak): token and basic auth
 * from WWW-Authenticate challenges, plain HTTP for insecure registries, digest checks.
 */
import http from 'node:http';
import https from 'node:https';
import { Readable } from 'node:stream';
import { isIP } from 'node:net';
import { DEFAULT_DOMAIN, type ImageReference } from './reference.js';
import { sha256 } from './blobs.js';
import { MANIFEST_ACCEPT } from './manifest.js';

/** The credentials the CLI sends base64url-encoded in `X-Registry-Auth`. */
export interface AuthConfig {
  username?: string;
  password?: string;
  auth?: string;
  serveraddress?: string;
  identitytoken?: string;
  registrytoken?: string;
}

export function decodeRegistryAuth(header: string | undefined): AuthConfig | undefined {
  if (!header) return undefined;
  try {
    const parsed = JSON.parse(Buffer.from(header, 'base64').toString('utf8')) as AuthConfig;
    if (!parsed.username && parsed.auth) {
      const plain = Buffer.from(parsed.auth, 'base64').toString('utf8');
      const i = plain.indexOf(':');
      if (i > 0) return { ...parsed, username: plain.slice(0, i), password: plain.slice(i + 1) };
    }
    return parsed;
  } catch {
    // dockerd ignores an unreadable auth header and goes on anonymously.
    return undefined;
  }
}

/** The registry a `docker login` names: `host[:port]` from `serveraddress`, Docker Hub for its index URL. */
export function loginDomain(serveraddress: string | undefined): string {
  const s = (serveraddress ?? '').trim();
  if (
    s === '' ||
    /^(https?:\/\/)?(index\.)?docker\.io(\/|$)/.test(s) ||
    /^(https?:\/\/)?registry-1\.docker\.io(\/|$)/.test(s)
  )
    return DEFAULT_DOMAIN;
  return s.replace(/^https?:\/\//, '').replace(/\/.*$/, '');
}

/** A registry answered with an error (its `errors[0]` when it sent one). */
export class RegistryError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** Registries Docker reaches over plain HTTP: listed ones (host:port, host or IPv4 CIDR), localhost and 127.0.0.0/8. */
export function isInsecureRegistry(domain: string, insecure: readonly string[]): boolean {
  const host = hostOf(domain);
  if (host === 'localhost' || host === '::1' || (isIP(host) === 4 && host.startsWith('127.'))) return true;
  for (const entry of insecure) {
    const e = entry.replace(/^https?:\/\//, '').replace(/\/$/, '');
    if (e === domain || e === host) return true;
    if (e.includes('/') && isIP(host) === 4 && inCidr(host, e)) return true;
  }
  return false;
}

function hostOf(domain: string): string {
  if (domain.startsWith('[')) return domain.slice(1, domain.indexOf(']'));
  const i = domain.lastIndexOf(':');
  return i > 0 ? domain.slice(0, i) : domain;
}

function inCidr(ip: string, cidr: string): boolean {
  const [net, bitsText] = cidr.split('/');
  const bits = Number(bitsText);
  if (isIP(net) !== 4 || !(bits >= 0 && bits <= 32)) return false;
  const toInt = (a: string) => a.split('.').reduce((n, o) => (n << 8) + Number(o), 0) >>> 0;
  const mask = bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0;
  return (toInt(ip) & mask) === (toInt(net) & mask);
}

/** Parses `Bearer realm="…",service="…",scope="…"`. */
export function parseChallenge(header: string): { scheme: string; params: Record<string, string> } {
  const sp = header.indexOf(' ');
  const scheme = (sp < 0 ? header : header.slice(0, sp)).toLowerCase();
  const params: Record<string, string> = {};
  const re = /([a-zA-Z_]+)=(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))/g;
  for (let m = re.exec(header.slice(sp + 1)); m; m = re.exec(header.slice(sp + 1)))
    params[m[1].toLowerCase()] = m[2] ?? m[3];
  return { scheme, params };
}

export interface FetchedManifest {
  body: Buffer;
  mediaType: string;
  digest: string;
}

export interface ClientOptions {
  insecure: boolean;
  auth?: AuthConfig;
  /** `pull` or `pull,push`: the token scope asked for. */
  actions: string;
}

export class RegistryClient {
  private authorization: string | undefined;
  /** The registry asked for credentials and was given the user's (the content is not for anyone). */
  usedCredentials = false;
  private readonly origin: string;

  constructor(
    readonly ref: Pick<ImageReference, 'domain' | 'path'>,
    private readonly opts: ClientOptions,
  ) {
    const host = ref.domain === DEFAULT_DOMAIN ? 'registry-1.docker.io' : ref.domain;
    this.origin = `${opts.insecure ? 'http' : 'https'}://${host}`;
  }

  /**
   * `docker login`: GET /v2/ with the credentials, answering the challenge. Throws a
   * RegistryError (401) when the registry or its token server refuses them.
   */
  async checkLogin(): Promise<void> {
    const res = await this.request('GET', `${this.origin}/v2/`);
    if (res.ok) {
      await res.body?.cancel().catch(() => undefined);
      return;
    }
    return this.fail(res, 'login');
  }

  private url(rest: string): string {
    return `${this.origin}/v2/${this.ref.path}/${rest}`;
  }

  /**
   * One request; on a 401 answers the challenge (token or basic) and tries once more.
   * Bodies given here are Buffers so they can be sent twice.
   */
  private async request(
    method: string,
    url: string,
    init: { headers?: Record<string, string>; body?: Buffer | ReadableStream; redirect?: RequestRedirect } = {},
  ): Promise<Response> {
    const send = () => this.send(method, url, init);
    let res = await send();
    if (res.status === 401 && !(init.body instanceof ReadableStream)) {
      const challenge = res.headers.get('www-authenticate');
      let answered: boolean;
      try {
        answered = !!challenge && (await this.answer(challenge));
      } catch (e) {
        await res.body?.cancel().catch(() => undefined);
        throw e;
      }
      // Unanswered, the refusal goes back whole: its `errors` body is the message users see.
      if (answered) {
        await res.body?.cancel();
        res = await send();
      }
    }
    return res;
  }

  private async send(
    method: string,
    url: string,
    init: { headers?: Record<string, string>; body?: Buffer | ReadableStream; redirect?: RequestRedirect },
  ): Promise<Response> {
    const headers: Record<string, string> = { 'User-Agent': 'shoal/0.1 (docker-compatible)', ...(init.headers ?? {}) };
    if (this.authorization) headers.Authorization = this.authorization;
    try {
      return await fetch(url, {
        method,
        headers,
        body: init.body,
        redirect: init.redirect ?? 'follow',
        // Streamed request bodies need half-duplex in Node's fetch.
        ...(init.body instanceof ReadableStream ? { duplex: 'half' } : {}),
      } as RequestInit);
    } catch (e) {
      const cause = (e as { cause?: { message?: string; code?: string } }).cause;
      // TLS spoken to a plain-HTTP registry: Go's words, which users search for.
      const why = /wrong version number|packet length too long/i.test(cause?.message ?? '')
        ? 'http: server gave HTTP response to HTTPS client'
        : (cause?.message ?? (e as Error).message);
      throw new RegistryError(0, 'UNAVAILABLE', `${method[0]}${method.slice(1).toLowerCase()} "${url}": ${why}`);
    }
  }

  /** Gets a token (or uses basic credentials) for this repository and the client's actions. */
  private async answer(challenge: string): Promise<boolean> {
    const { scheme, params } = parseChallenge(challenge);
    const auth = this.opts.auth;
    if (scheme === 'basic') {
      if (!auth?.username) return false;
      this.authorization = `Basic ${Buffer.from(`${auth.username}:${auth.password ?? ''}`).toString('base64')}`;
      this.usedCredentials = true;
      return true;
    }
    if (scheme !== 'bearer' || !params.realm) return false;
    if (auth?.registrytoken) {
      this.authorization = `Bearer ${auth.registrytoken}`;
      this.usedCredentials = true;
      return true;
    }
    const tokenUrl = new URL(params.realm);
    if (params.service) tokenUrl.searchParams.set('service', params.service);
    // A login check (no repository) asks for a token without a scope, as dockerd does.
    if (this.ref.path) tokenUrl.searchParams.set('scope', `repository:${this.ref.path}:${this.opts.actions}`);
    if (auth?.username) tokenUrl.searchParams.set('account', auth.username);
    const headers: Record<string, string> = {};
    if (auth?.username)
      headers.Authorization = `Basic ${Buffer.from(`${auth.username}:${auth.password ?? ''}`).toString('base64')}`;
    let res: Response;
    try {
      res = await fetch(tokenUrl, { headers });
    } catch (e) {
      throw new RegistryError(
        0,
        'UNAVAILABLE',
        `Get "${tokenUrl}": ${(e as { cause?: Error }).cause?.message ?? (e as Error).message}`,
      );
    }
    if (!res.ok) {
      await res.body?.cancel();
      if (res.status === 401)
        throw new RegistryError(
          401,
          'UNAUTHORIZED',
          auth?.username ? 'unauthorized: incorrect username or password' : 'unauthorized: authentication required',
        );
      throw new RegistryError(
        res.status,
        'UNAUTHORIZED',
        `Get "${tokenUrl.origin}${tokenUrl.pathname}": unexpected status ${res.status}`,
      );
    }
    const body = (await res.json()) as { token?: string; access_token?: string };
    const token = body.token ?? body.access_token;
    if (!token) return false;
    this.authorization = `Bearer ${token}`;
    this.usedCredentials = !!auth?.username;
    return true;
  }

  private async fail(res: Response, what: string): Promise<never> {
    let code = 'UNKNOWN';
    let message = `${what}: unexpected status ${res.status} ${res.statusText}`;
    try {
      const body = (await res.json()) as { errors?: Array<{ code?: string; message?: string }> };
      const e = body.errors?.[0];
      if (e) {
        code = e.code ?? code;
        message = `${(e.code ?? '').toLowerCase().replace(/_/g, ' ')}: ${e.message ?? ''}`;
      }
    } catch {
      /* a body that is not the distribution error format */
    }
    if (res.status === 401 && code === 'UNKNOWN') code = 'UNAUTHORIZED';
    throw new RegistryError(res.status, code, message);
  }

  /** GET /v2/<name>/manifests/<tag|digest>; the content must hash to the digest asked for. */
  async getManifest(reference: string): Promise<FetchedManifest> {
    const res = await this.request('GET', this.url(`manifests/${reference}`), { headers: { Accept: MANIFEST_ACCEPT } });
    if (!res.ok) return this.fail(res, `manifest ${reference}`);
    const body = Buffer.from(await res.arrayBuffer());
    const digest = sha256(body);
    if (reference.startsWith('sha256:') && digest !== reference)
      throw new RegistryError(0, 'DIGEST_INVALID', `manifest verification failed for digest ${reference}`);
    let mediaType = (res.headers.get('content-type') ?? '').split(';')[0].trim();
    try {
      const parsed = JSON.parse(body.toString('utf8')) as {
        mediaType?: string;
        manifests?: unknown;
        schemaVersion?: number;
      };
      if (parsed.mediaType) mediaType = parsed.mediaType;
      else if (!mediaType || mediaType === 'application/json')
        mediaType = parsed.manifests
          ? 'application/vnd.oci.image.index.v1+json'
          : 'application/vnd.oci.image.manifest.v1+json';
    } catch {
      throw new RegistryError(0, 'MANIFEST_INVALID', `manifest ${reference} is not JSON`);
    }
    return { body, mediaType, digest };
  }

  /** GET /v2/<name>/tags/list: every tag of the repository (following `Link` pages). */
  async listTags(): Promise<string[]> {
    const tags: string[] = [];
    let next: string | undefined = this.url('tags/list');
    while (next) {
      const res = await this.request('GET', next);
      if (!res.ok) return this.fail(res, 'tags');
      const body = (await res.json()) as { tags?: string[] | null };
      tags.push(...(body.tags ?? []));
      const link = /<([^>]+)>;\s*rel="?next"?/.exec(res.headers.get('link') ?? '');
      next = link ? new URL(link[1], this.origin).toString() : undefined;
    }
    return tags;
  }

  /** The blob's bytes as a stream; the caller verifies the digest while storing it. */
  async getBlob(digest: string): Promise<{ stream: Readable; size: number | undefined }> {
    const res = await this.request('GET', this.url(`blobs/${digest}`));
    if (!res.ok || !res.body) return this.fail(res, `blob ${digest}`);
    const len = res.headers.get('content-length');
    return {
      stream: Readable.fromWeb(res.body as import('node:stream/web').ReadableStream),
      size: len ? Number(len) : undefined,
    };
  }

  async blobExists(digest: string): Promise<boolean> {
    const res = await this.request('HEAD', this.url(`blobs/${digest}`));
    await res.body?.cancel();
    if (res.status === 404) return false;
    if (res.ok) return true;
    return this.fail(res, `blob ${digest}`);
  }

  /**
   * Cross-repository mount: `POST uploads/?mount=&from=`. A 201 means the registry linked the
   * blob; anything else (it may open an ordinary upload session instead) means upload it.
   */
  async mountBlob(digest: string, fromPath: string): Promise<boolean> {
    const url = new URL(this.url('blobs/uploads/'));
    url.searchParams.set('mount', digest);
    url.searchParams.set('from', fromPath);
    const res = await this.request('POST', url.toString(), { headers: { 'Content-Length': '0' } });
    await res.body?.cancel().catch(() => undefined);
    const location = res.headers.get('location');
    // An upload session opened instead of the mount: cancel it, uploadBlob opens its own.
    if (res.status === 202 && location)
      await this.request('DELETE', new URL(location, this.origin).toString())
        .then((r) => r.body?.cancel())
        .catch(() => undefined);
    return res.status === 201;
  }

  /**
   * Monolithic upload: POST to open a session, PUT the whole blob with its digest. The PUT
   * streams the file through node:http(s) with its length known (fetch cannot send a stream
   * body with a Content-Length, and some registries insist on one).
   */
  async uploadBlob(digest: string, body: Readable, size: number): Promise<void> {
    const start = await this.request('POST', this.url('blobs/uploads/'), { headers: { 'Content-Length': '0' } });
    await start.body?.cancel().catch(() => undefined);
    if (start.status !== 202) return this.fail(start, 'starting blob upload');
    const location = start.headers.get('location');
    if (!location) throw new RegistryError(0, 'BLOB_UPLOAD_INVALID', 'registry gave no upload location');
    const put = new URL(location, this.origin);
    put.searchParams.set('digest', digest);
    const res = await this.streamPut(put, body, size);
    if (res.status !== 201) return this.fail(res, `uploading blob ${digest}`);
  }

  private streamPut(url: URL, body: Readable, size: number): Promise<Response> {
    const headers: Record<string, string> = {
      'User-Agent': 'shoal/0.1 (docker-compatible)',
      'Content-Type': 'application/octet-stream',
      'Content-Length': String(size),
    };
    if (this.authorization) headers.Authorization = this.authorization;
    const mod = url.protocol === 'https:' ? https : http;
    return new Promise((resolve, reject) => {
      const req = mod.request(url, { method: 'PUT', headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const h = new Headers();
          for (const [k, v] of Object.entries(res.headers)) if (typeof v === 'string') h.set(k, v);
          resolve(
            new Response(res.statusCode === 204 ? null : Buffer.concat(chunks), {
              status: res.statusCode ?? 0,
              statusText: res.statusMessage ?? '',
              headers: h,
            }),
          );
        });
        res.on('error', reject);
      });
      req.on('error', (e) => reject(new RegistryError(0, 'UNAVAILABLE', `Put "${url}": ${e.message}`)));
      body.on('error', (e) => req.destroy(e));
      body.pipe(req);
    });
  }

  async putManifest(reference: string, mediaType: string, body: Buffer): Promise<string> {
    const res = await this.request('PUT', this.url(`manifests/${reference}`), {
      headers: { 'Content-Type': mediaType },
      body,
    });
    if (res.status !== 201 && res.status !== 200) return this.fail(res, `manifest ${reference}`);
    await res.body?.cancel().catch(() => undefined);
    return res.headers.get('docker-content-digest') ?? sha256(body);
  }
}
