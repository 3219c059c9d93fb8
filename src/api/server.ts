import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from '../util/log.js';
import { ApiError, errorText } from '../util/errors.js';
import { RequestContext } from './context.js';
import type { Router } from './router.js';
import { SERVER_HEADERS, splitVersion } from './version.js';
import type { ApiTls } from './tls.js';
import type { AccessControl } from './access/access-control.js';

/**
 * Request line plus headers, in bytes (node's default is 16 KiB). dockerd (Go net/http) allows
 * 1 MiB; 64 KiB is tighter and still fits long `filters` query strings. Beyond it: 431.
 */
export const MAX_HEADER_BYTES = 64 * 1024;

/** An answer written straight to the socket, for requests the HTTP parser refused. */
function endRaw(socket: Duplex, status: number, message: string): void {
  if (!socket.writable) return void socket.destroy();
  const text = JSON.stringify({ message }) + '\n';
  const head = [
    `HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? ''}`,
    'Content-Type: application/json',
    `Content-Length: ${Buffer.byteLength(text)}`,
    'Connection: close',
    ...Object.entries(SERVER_HEADERS).map(([k, v]) => `${k}: ${v}`),
  ];
  socket.end(`${head.join('\r\n')}\r\n\r\n${text}`);
}

/** Parser errors as Go's net/http answers them (431 for oversized headers, 400 otherwise), with a JSON body. */
function answerClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
  if (err.code === 'ECONNRESET' || err.code === 'EPIPE') return void socket.destroy();
  // A body that breaks framing after a route answered: the answer is out, only closing is left
  // (node's own default handler checks the same private field).
  const inFlight = (socket as { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  if (inFlight?.headersSent) return void socket.destroy();
  switch (err.code) {
    case 'HPE_HEADER_OVERFLOW':
      return endRaw(socket, 431, `request line and headers are larger than ${MAX_HEADER_BYTES} bytes`);
    // Go routes any method token; dockerd's router then has no match: 404 "page not found".
    case 'HPE_INVALID_METHOD':
      return endRaw(socket, 404, 'page not found');
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return endRaw(socket, 408, 'request timeout');
    default:
      return endRaw(socket, 400, `bad request: ${(err as { reason?: string }).reason ?? err.message}`);
  }
}

/**
 * The Engine API over HTTP on unix sockets and TCP, TLS with client certificates on TCP as
 * dockerd's --tlsverify: versioned paths, Docker's errors, hijack; one server per `-H`.
 */
export class ApiServer {
  private readonly servers: http.Server[] = [];
  private readonly tlsSources: ApiTls[] = [];
  /** Hijacked connections (attach, exec): closeAllConnections does not see them. */
  private readonly upgraded = new Set<Socket>();

  constructor(
    private readonly router: Router,
    private readonly log: Logger,
    /** Identifies callers, checks their role and writes the audit log; absent: everyone is admin. */
    private readonly access?: AccessControl,
  ) {}

  private makeServer(tls?: ApiTls): http.Server {
    const handle = (req: IncomingMessage, res: ServerResponse) =>
      void this.dispatch(req, res).catch((err: unknown) => this.log.error({ err, url: req.url }, 'request failed'));
    // requestCert: a client without a certificate from a trusted CA, or with an expired one, is
    // cut off when the handshake ends, before any HTTP is read. The check is ours rather than
    // rejectUnauthorized's (which does the same) so the log says why.
    const server = tls
      ? https.createServer(
          { ...tls.options(), requestCert: true, rejectUnauthorized: false, maxHeaderSize: MAX_HEADER_BYTES },
          handle,
        )
      : http.createServer({ maxHeaderSize: MAX_HEADER_BYTES }, handle);
    // What node's HTTP parser refuses never reaches a route: answer it as JSON too.
    server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => answerClientError(err, socket));
    // CONNECT is a method like any other to dockerd: no route has it.
    server.on('connect', (_req: IncomingMessage, socket: Duplex) => endRaw(socket, 404, 'page not found'));
    if (tls) {
      tls.watch((o) => (server as https.Server).setSecureContext(o));
      this.tlsSources.push(tls);
      server.on('tlsClientError', (err: Error, s: Socket) =>
        this.log.info({ err: err.message, remote: s.remoteAddress }, 'API TLS handshake refused'),
      );
      // Runs before the HTTP parser's listener, so a refused client's request is never parsed.
      server.prependListener('secureConnection', (s: TLSSocket) => {
        if (s.authorized) return;
        const shown = Object.keys(s.getPeerCertificate() ?? {}).length > 0;
        this.log.info(
          { err: shown ? String(s.authorizationError) : 'no client certificate', remote: s.remoteAddress },
          'API TLS handshake refused',
        );
        s.destroy();
      });
    }
    server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
      // The client half-closes after stdin (over TLS a close_notify): output must still flow.
      socket.allowHalfOpen = true;
      this.upgraded.add(socket);
      socket.on('close', () => this.upgraded.delete(socket));
      this.dispatch(req, undefined, socket, head).catch((err: unknown) =>
        this.log.error({ err, url: req.url }, 'upgraded request failed'),
      );
    });
    // Streams such as `logs -f` and `events` stay open for as long as the client wants.
    server.requestTimeout = 0;
    server.headersTimeout = 60_000;
    server.keepAliveTimeout = 60_000;
    this.servers.push(server);
    return server;
  }

  /** `unix:///path` or `tcp://host:port` (TLS with client certificates when `tls` is given). */
  async listen(address: string, tls?: ApiTls): Promise<void> {
    const url = new URL(address);
    if (url.protocol === 'unix:') {
      const p = url.pathname;
      fs.mkdirSync(path.dirname(p), { recursive: true });
      fs.rmSync(p, { force: true });
      const server = this.makeServer();
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(p, () => resolve());
      });
      fs.chmodSync(p, 0o660);
    } else if (url.protocol === 'tcp:') {
      const server = this.makeServer(tls);
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(Number(url.port || (tls ? 2376 : 2375)), url.hostname.replace(/^\[|\]$/g, ''), () => resolve());
      });
    } else {
      throw new Error(`unsupported listen address ${address}`);
    }
  }

  /** Re-reads every listener's TLS files now. */
  reloadTls(): void {
    for (const t of this.tlsSources) t.reload();
  }

  async close(): Promise<void> {
    for (const t of this.tlsSources) t.stop();
    await Promise.all(
      this.servers.map(
        (server) =>
          new Promise<void>((resolve) => {
            server.close(() => resolve());
            server.closeAllConnections();
          }),
      ),
    );
    for (const s of this.upgraded) s.destroy();
  }

  private async dispatch(req: IncomingMessage, res?: ServerResponse, socket?: Socket, head?: Buffer): Promise<void> {
    let ctx: RequestContext | undefined;
    const who = this.access?.identify(req);
    let call: { pattern: string; path: string; params: Record<string, string> } | undefined;
    let status = 500;
    let created: string | undefined;
    try {
      const url = parseRequestUrl(req.url);
      const { version, path: routePath } = splitVersion(url.pathname);
      const found = this.router.match(req.method ?? 'GET', routePath);
      // dockerd's router sends a wrong method to the same handler as an unknown path.
      if (!('handler' in found)) throw new ApiError(404, 'page not found');
      call = { pattern: found.pattern, path: routePath, params: found.params };
      if (who) this.access!.authorize(who, req.method ?? 'GET', found.pattern);
      ctx = new RequestContext(req, res, found.params, url.searchParams, version, socket, head);
      if (who) ctx.requireRole = (needed, action) => this.access!.require(who, needed, action);
      const result = await found.handler(ctx);
      created = createdId(result?.body);
      status = ctx.responded ? (socket ? 101 : 200) : (result?.status ?? (result?.body === undefined ? 204 : 200));
      if (ctx.responded) return;
      this.send(req, res, socket, status, result?.body, result?.headers);
    } catch (e) {
      status = e instanceof ApiError ? e.status : 500;
      if (!(e instanceof ApiError)) this.log.error({ err: e, url: req.url }, 'request failed');
      if (ctx?.responded) {
        // The response already started: nothing can carry a status now, so end the stream.
        (res ?? socket)?.end();
        return;
      }
      // A system error reads as dockerd's would ("write FILE: no space left on device").
      const message = errorText(e);
      this.send(req, res, socket, status, status === 304 ? undefined : { message });
    } finally {
      if (who && call)
        this.access!.record(who, {
          method: req.method ?? 'GET',
          ...call,
          status,
          streamed: !!ctx?.responded,
          ...(created ? { created } : {}),
        });
      this.log.debug({ method: req.method, url: req.url }, 'api');
    }
  }

  private send(
    req: IncomingMessage,
    res: ServerResponse | undefined,
    socket: Socket | undefined,
    status: number,
    body: unknown,
    headers: Record<string, string> = {},
  ): void {
    const text = body === undefined ? '' : typeof body === 'string' ? body : JSON.stringify(body) + '\n';
    const all: Record<string, string> = { ...SERVER_HEADERS, ...headers };
    if (body !== undefined && !all['Content-Type'])
      all['Content-Type'] = typeof body === 'string' ? 'text/plain; charset=utf-8' : 'application/json';
    if (res) {
      res.writeHead(status, all);
      res.end(req.method === 'HEAD' ? undefined : text);
    } else if (socket) {
      const lines = Object.entries({
        ...all,
        'Content-Length': String(Buffer.byteLength(text)),
        Connection: 'close',
      }).map(([k, v]) => `${k}: ${v}`);
      socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? ''}\r\n${lines.join('\r\n')}\r\n\r\n${text}`);
    }
  }
}

/**
 * The request target as a URL. Path segments are percent-decoded by the router, so a bad
 * escape is the client's error (400), as Go's url.ParseRequestURI makes it.
 */
function parseRequestUrl(target: string | undefined): URL {
  const raw = target ?? '/';
  // Origin form (`/path?query`), or the absolute form Go also accepts (`http://host/path`).
  const absolute = /^https?:\/\//i.test(raw);
  if (!absolute && !raw.startsWith('/'))
    throw new ApiError(400, `bad request: unsupported request target ${JSON.stringify(raw.slice(0, 100))}`);
  let url: URL;
  try {
    url = absolute ? new URL(raw) : new URL(`http://shoal${raw}`);
  } catch {
    throw new ApiError(400, 'bad request: malformed request URL');
  }
  try {
    decodeURIComponent(url.pathname);
  } catch {
    throw new ApiError(400, `bad request: invalid URL escape in ${JSON.stringify(url.pathname.slice(0, 100))}`);
  }
  return url;
}

/** The ID a create call answers with (`{"ID": …}` for swarm objects, `{"Id": …}` for local ones): what the audit log names. */
function createdId(body: unknown): string | undefined {
  if (!body || typeof body !== 'object') return undefined;
  const b = body as { ID?: unknown; Id?: unknown };
  const id = b.ID ?? b.Id;
  return typeof id === 'string' ? id : undefined;
}
