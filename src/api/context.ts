import type { IncomingMessage, ServerResponse } from 'node:http';
import { Duplex } from 'node:stream';
import type { Socket } from 'node:net';
import { ApiError, badRequest } from '../util/errors.js';
import {
  decodeBody,
  discardRest,
  MAX_JSON_BODY,
  readLimited,
  tooLarge,
  type BodyName,
  type BodyTypes,
} from './decode/index.js';
import { SERVER_HEADERS } from './version.js';
import type { Role } from './access/roles.js';
import { checkForJson } from './check-json.js';

/** What a route handler sees of one request. */
export class RequestContext {
  /** Set once the handler took over the connection (hijack) or wrote the response itself. */
  responded = false;

  /**
   * Throws the 403 when the caller may not do `action` (which needs `needed`): for a call whose
   * route any operator may make but whose body can ask for more (a node update that changes
   * the role). Allows everything when the server checks no roles.
   */
  requireRole: (needed: Role, action: string) => void = () => undefined;

  constructor(
    readonly req: IncomingMessage,
    readonly res: ServerResponse | undefined,
    readonly params: Record<string, string>,
    readonly query: URLSearchParams,
    readonly apiVersion: string,
    /** Present when the client asked to upgrade the connection (attach, exec start). */
    private readonly upgradeSocket?: Socket,
    private upgradeHead?: Buffer,
  ) {}

  /**
   * Reads the JSON body and decodes it as the Docker type `name`, as dockerd would (see
   * api/decode/index.ts): `const spec = await ctx.body('ServiceSpec')`. Bad input is a 400,
   * a body over MAX_JSON_BODY a 413, before the route does anything.
   */
  async body<K extends BodyName>(name: K): Promise<BodyTypes[K]> {
    return decodeBody(name, await this.rawBody());
  }

  /** dockerd's CheckForJSON: a body must come as application/json (400 otherwise); see check-json.ts. */
  checkForJson(): void {
    checkForJson(this.req);
  }

  /**
   * Reads the body as untyped JSON; an empty body is `{}`.
   * @deprecated No types are checked: use body(name), which decodes as dockerd does.
   */
  async json<T = Record<string, unknown>>(): Promise<T> {
    const raw = (await this.rawBody()).toString('utf8');
    if (raw.trim() === '') return {} as T;
    try {
      return JSON.parse(raw) as T;
    } catch (e) {
      throw badRequest(`invalid JSON: ${(e as Error).message}`);
    }
  }

  /** The whole body, at most MAX_JSON_BODY bytes (413 beyond): for JSON, never for uploads. */
  async rawBody(): Promise<Buffer> {
    const length = this.req.headers['content-length'];
    try {
      if (this.upgradeSocket) {
        if (Number(length ?? 0) > MAX_JSON_BODY) throw tooLarge(MAX_JSON_BODY);
        return await this.upgradeBody(this.upgradeSocket);
      }
      return await readLimited(this.req, MAX_JSON_BODY, length);
    } catch (e) {
      if (e instanceof ApiError && e.status === 413 && !this.upgradeSocket) discardRest(this.req);
      throw e;
    }
  }

  /**
   * On an upgrade request node does not parse the body: it is the first Content-Length bytes
   * of `head` and the socket. What follows them stays for the hijacked stream.
   */
  private async upgradeBody(s: Socket): Promise<Buffer> {
    const want = Number(this.req.headers['content-length'] ?? 0);
    let have = this.upgradeHead ?? Buffer.alloc(0);
    while (have.length < want) {
      const chunk = await new Promise<Buffer | null>((resolve) => {
        const onData = (b: Buffer) => {
          cleanup();
          resolve(b);
        };
        const onEnd = () => {
          cleanup();
          resolve(null);
        };
        const cleanup = () => {
          s.off('data', onData);
          s.off('end', onEnd);
          s.off('close', onEnd);
          s.pause();
        };
        s.on('data', onData);
        s.once('end', onEnd);
        s.once('close', onEnd);
        s.resume();
      });
      if (!chunk) break;
      have = Buffer.concat([have, chunk]);
    }
    this.upgradeHead = have.subarray(Math.min(want, have.length));
    return have.subarray(0, want);
  }

  /**
   * dockerd's BoolValue: any value but "0", "no", "false" or "none" (any case, trimmed) is
   * true, so a query bool is never an error. Absent or empty keeps `dflt`.
   */
  bool(name: string, dflt = false): boolean {
    const v = this.query.get(name)?.trim().toLowerCase();
    if (v === undefined || v === '') return dflt;
    return !['0', 'false', 'no', 'none'].includes(v);
  }

  /** An integer query value (strconv.Atoi); anything else is a 400, never a guess. */
  int(name: string, dflt: number): number {
    const v = this.query.get(name);
    if (v === null || v === '') return dflt;
    const n = Number(v);
    if (!/^[+-]?\d+$/.test(v) || !Number.isSafeInteger(n))
      throw badRequest(`invalid value for ${name}: strconv.Atoi: parsing ${JSON.stringify(v)}: invalid syntax`);
    return n;
  }

  /**
   * Docker's `filters` query parameter: `{"key": {"v": true}}` or the legacy `{"key": ["v"]}`,
   * one format for the whole object (moby filters.FromJSON). `null` is no filter, as Go
   * decodes it; anything else that is not one of the two shapes is 400 "invalid filter".
   */
  filters(): Map<string, string[]> {
    const out = new Map<string, string[]>();
    const raw = this.query.get('filters');
    if (!raw) return out;
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw);
    } catch {
      throw badRequest('invalid filter');
    }
    if (parsed === null) return out;
    if (typeof parsed !== 'object' || Array.isArray(parsed)) throw badRequest('invalid filter');
    const entries = Object.entries(parsed as Record<string, unknown>);
    // Go decodes a JSON null into a string or bool as "nothing": the key stays, with no value.
    const isSet = (v: unknown) =>
      v === null ||
      (typeof v === 'object' &&
        !Array.isArray(v) &&
        Object.values(v as object).every((b) => b === null || typeof b === 'boolean'));
    const isList = (v: unknown) =>
      v === null || (Array.isArray(v) && v.every((x) => x === null || typeof x === 'string'));
    if (entries.every(([, v]) => isSet(v))) {
      for (const [k, v] of entries) out.set(k, v === null ? [] : Object.keys(v as object));
    } else if (entries.every(([, v]) => isList(v))) {
      for (const [k, v] of entries)
        out.set(k, v === null ? [] : [...new Set((v as (string | null)[]).map((x) => x ?? ''))]);
    } else {
      throw badRequest('invalid filter');
    }
    return out;
  }

  /** Starts a streamed response (pull progress, logs, events). */
  stream(status: number, contentType: string): ServerResponse {
    const res = this.requireRes();
    this.responded = true;
    res.writeHead(status, { ...SERVER_HEADERS, 'Content-Type': contentType });
    res.flushHeaders();
    return res;
  }

  /**
   * Takes over the connection for raw bidirectional streams (attach, exec). With an
   * `Upgrade: tcp` request it answers 101 as dockerd does; otherwise a 200 whose body is the stream.
   * After json() the socket may be explicitly paused: readers call resume() once they listen.
   */
  hijack(contentType = 'application/vnd.docker.raw-stream'): Duplex {
    this.responded = true;
    if (this.upgradeSocket) {
      const s = this.upgradeSocket;
      s.write(
        `HTTP/1.1 101 UPGRADED\r\nContent-Type: ${contentType}\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nApi-Version: ${SERVER_HEADERS['Api-Version']}\r\n\r\n`,
      );
      if (this.upgradeHead && this.upgradeHead.length) s.unshift(this.upgradeHead);
      return s;
    }
    const res = this.requireRes();
    res.writeHead(200, { ...SERVER_HEADERS, 'Content-Type': contentType });
    res.flushHeaders();
    return Duplex.from({ readable: this.req, writable: res });
  }

  private requireRes(): ServerResponse {
    if (!this.res) throw new Error('no response object on an upgraded connection');
    return this.res;
  }
}
