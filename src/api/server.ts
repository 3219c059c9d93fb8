import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from '../util/log.js';
import { ApiError } from '../util/errors.js';
import { RequestContext } from './context.js';
import type { Router } from './router.js';
import { SERVER_HEADERS, splitVersion } from './version.js';

/**
 * Request line plus headers, in bytes (node's default is 16 KiB). dockerd (Go net/http) allows
 * 1 MiB; 64 KiB is tighter and still fits long `filters` query strings. Beyond it: 431.
 */
export const MAX_HEADER_BYTES = 64 * 1024;

/** An answer written straight to the socket, for requests the HTTP parser refused. */
function endRaw(socket: Duplex, status: number, message: string): void {
  if (!socket.writable) return void socket.destroy();
  const text = JSON.stringify({ message }) + '\n';
  const head = [`HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? ''}`, 'Content-Type: application/json', `Content-Length: ${Buffer.byteLength(text)}`, 'Connection: close',
    ...Object.entries(SERVER_HEADERS).map(([k, v]) => `${k}: ${v}`)];
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
    case 'HPE_HEADER_OVERFLOW': return endRaw(socket, 431, `request line and headers are larger than ${MAX_HEADER_BYTES} bytes`);
    // Go routes any method token; dockerd's router then has no match: 404 "page not found".
    case 'HPE_INVALID_METHOD': return endRaw(socket, 404, 'page not found');
    case 'ERR_HTTP_REQUEST_TIMEOUT': return endRaw(socket, 408, 'request timeout');
    default: return endRaw(socket, 400, `bad request: ${(err as { reason?: string }).reason ?? err.message}`);
  }
}

/** The Engine API over HTTP on a unix socket (or TCP): versioned paths, Docker's errors, hijack. */
export class ApiServer {
  private readonly server: http.Server;
  /** Hijacked connections (attach, exec): closeAllConnections does not see them. */
  private readonly upgraded = new Set<Socket>();

  constructor(
    private readonly router: Router,
    private readonly log: Logger,
  ) {
    this.server = http.createServer({ maxHeaderSize: MAX_HEADER_BYTES }, (req, res) => void this.dispatch(req, res));
    // What node's HTTP parser refuses never reaches a route: answer it as JSON too.
    this.server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => answerClientError(err, socket));
    // CONNECT is a method like any other to dockerd: no route has it.
    this.server.on('connect', (_req: IncomingMessage, socket: Duplex) => endRaw(socket, 404, 'page not found'));
    this.server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
      this.upgraded.add(socket);
      socket.on('close', () => this.upgraded.delete(socket));
      void this.dispatch(req, undefined, socket, head);
    });
    // Streams such as `logs -f` and `events` stay open for as long as the client wants.
    this.server.requestTimeout = 0;
    this.server.headersTimeout = 60_000;
    this.server.keepAliveTimeout = 60_000;
  }

  /** `unix:///path` or `tcp://host:port`. */
  async listen(address: string): Promise<void> {
    const url = new URL(address);
    if (url.protocol === 'unix:') {
      const p = url.pathname;
      fs.mkdirSync(path.dirname(p), { recursive: true });
      fs.rmSync(p, { force: true });
      await new Promise<void>((resolve, reject) => {
        this.server.once('error', reject);
        this.server.listen(p, () => resolve());
      });
      fs.chmodSync(p, 0o660);
    } else if (url.protocol === 'tcp:') {
      await new Promise<void>((resolve, reject) => {
        this.server.once('error', reject);
        this.server.listen(Number(url.port || 2375), url.hostname, () => resolve());
      });
    } else {
      throw new Error(`unsupported listen address ${address}`);
    }
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
      for (const s of this.upgraded) s.destroy();
    });
  }

  private async dispatch(req: IncomingMessage, res?: ServerResponse, socket?: Socket, head?: Buffer): Promise<void> {
    let ctx: RequestContext | undefined;
    try {
      const url = parseRequestUrl(req.url);
      const { version, path: routePath } = splitVersion(url.pathname);
      const found = this.router.match(req.method ?? 'GET', routePath);
      // dockerd's router sends a wrong method to the same handler as an unknown path.
      if (!('handler' in found)) throw new ApiError(404, 'page not found');
      ctx = new RequestContext(req, res, found.params, url.searchParams, version, socket, head);
      const result = await found.handler(ctx);
      if (ctx.responded) return;
      const status = result?.status ?? (result?.body === undefined ? 204 : 200);
      this.send(req, res, socket, status, result?.body, result?.headers);
    } catch (e) {
      const status = e instanceof ApiError ? e.status : 500;
      if (!(e instanceof ApiError)) this.log.error({ err: e, url: req.url }, 'request failed');
      if (ctx?.responded) {
        // The response already started: nothing can carry a status now, so end the stream.
        (res ?? socket)?.end();
        return;
      }
      const message = e instanceof Error ? e.message : String(e);
      this.send(req, res, socket, status, status === 304 ? undefined : { message });
    } finally {
      this.log.debug({ method: req.method, url: req.url }, 'api');
    }
  }

  private send(req: IncomingMessage, res: ServerResponse | undefined, socket: Socket | undefined, status: number, body: unknown, headers: Record<string, string> = {}): void {
    const text = body === undefined ? '' : typeof body === 'string' ? body : JSON.stringify(body) + '\n';
    const all: Record<string, string> = { ...SERVER_HEADERS, ...headers };
    if (body !== undefined && !all['Content-Type']) all['Content-Type'] = typeof body === 'string' ? 'text/plain; charset=utf-8' : 'application/json';
    if (res) {
      res.writeHead(status, all);
      res.end(req.method === 'HEAD' ? undefined : text);
    } else if (socket) {
      const lines = Object.entries({ ...all, 'Content-Length': String(Buffer.byteLength(text)), Connection: 'close' }).map(([k, v]) => `${k}: ${v}`);
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
  if (!absolute && !raw.startsWith('/')) throw new ApiError(400, `bad request: unsupported request target ${JSON.stringify(raw.slice(0, 100))}`);
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
