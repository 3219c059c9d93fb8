import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from '../util/log.js';
import { ApiError } from '../util/errors.js';
import { RequestContext } from './context.js';
import type { Router } from './router.js';
import { SERVER_HEADERS, splitVersion } from './version.js';

/** The Engine API over HTTP on a unix socket (or TCP): versioned paths, Docker's errors, hijack. */
export class ApiServer {
  private readonly server: http.Server;
  /** Hijacked connections (attach, exec): closeAllConnections does not see them. */
  private readonly upgraded = new Set<Socket>();

  constructor(
    private readonly router: Router,
    private readonly log: Logger,
  ) {
    this.server = http.createServer((req, res) => void this.dispatch(req, res));
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
    const url = new URL(req.url ?? '/', 'http://shoal');
    let ctx: RequestContext | undefined;
    try {
      const { version, path: routePath } = splitVersion(url.pathname);
      const found = this.router.match(req.method ?? 'GET', routePath);
      if (!('handler' in found)) {
        throw new ApiError(found.methodMismatch ? 405 : 404, found.methodMismatch ? 'method not allowed' : `page not found`);
      }
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
      this.send(req, res, socket, status, status === 304 ? undefined : { message: (e as Error).message });
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
