import http from 'node:http';
import https from 'node:https';
import type { SecureContextOptions } from 'node:tls';
import type { Duplex } from 'node:stream';
import type { Logger } from '../../util/log.js';
import { identify, type RoleMap } from '../access/identity.js';
import type { DashboardFeed, FeedMessage } from './feed.js';
import type { DashboardToken } from './token.js';
import { APP_CSS, APP_JS, loginPage, PAGE_HTML } from './assets.js';

const COOKIE = 'shoal_dashboard';
/** The page's own script and style only: nothing from anywhere else (no CDN). */
const CSP =
  "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'";

export interface DashboardOptions {
  /** HTTPS with the daemon's API certificates: a verified client certificate with an API role logs in. */
  tls?: SecureContextOptions;
  roles?: RoleMap;
}

/** `--dashboard-addr HOST:PORT` (an IPv6 host in brackets); throws a message naming the flag. */
export function parseDashboardAddr(addr: string): { host: string; port: number } {
  const i = addr.lastIndexOf(':');
  const host = addr.slice(0, i).replace(/^\[|\]$/g, '');
  const port = Number(addr.slice(i + 1));
  if (i < 1 || !host || addr.slice(i + 1) === '' || !Number.isInteger(port) || port < 0 || port > 65535)
    throw new Error(`--dashboard-addr ${addr}: want HOST:PORT`);
  return { host, port };
}

function cookieToken(req: http.IncomingMessage): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === COOKIE) return decodeURIComponent(v.join('='));
  }
  return undefined;
}

function readForm(req: http.IncomingMessage, limit = 4096): Promise<URLSearchParams> {
  return new Promise((resolve, reject) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => {
      body += c;
      if (body.length > limit) reject(new Error('form too large'));
    });
    req.on('end', () => resolve(new URLSearchParams(body)));
    req.on('error', reject);
  });
}

/**
 * The dashboard: a read-only page (GET only, apart from logging in and out) that shows the
 * swarm live. Everything but the login form needs the token (cookie or `Authorization:
 * Bearer`) or, over HTTPS, a verified client certificate that has an API role; without: 401.
 */
export class DashboardServer {
  private server?: http.Server;
  private readonly sockets = new Set<Duplex>();
  /** Open streams (feed and logs), each with its request, so a token rotation can end those it no longer allows. */
  private readonly streams = new Map<http.ServerResponse, http.IncomingMessage>();
  private readonly offRotate: () => void;

  constructor(
    private readonly feed: DashboardFeed,
    private readonly token: DashboardToken,
    private readonly log: Logger,
    private readonly opts: DashboardOptions = {},
  ) {
    this.offRotate = token.onRotate(() => this.endDisallowedStreams());
  }

  /** A rotated token logs pages out: their streams end, and the page's reconnect meets 401. */
  private endDisallowedStreams(): void {
    for (const [res, req] of this.streams) if (!this.allowedNow(req)) res.end();
  }

  /** Server-sent events headers, and the stream kept until it closes. */
  private openStream(req: http.IncomingMessage, res: http.ServerResponse): void {
    res.writeHead(200, { 'Content-Type': 'text/event-stream', Connection: 'keep-alive' });
    res.flushHeaders();
    this.streams.set(res, req);
    res.on('close', () => this.streams.delete(res));
  }

  /** The tokens a request offers: `Authorization: Bearer` and the login cookie. */
  private offered(req: http.IncomingMessage): string[] {
    const auth = req.headers.authorization;
    const bearer = auth?.startsWith('Bearer ') ? auth.slice(7).trim() : undefined;
    return [bearer, cookieToken(req)].filter((t): t is string => !!t);
  }

  /** Who may look, by this manager's copy of the token, or a client certificate the API would give a role. */
  private allowedNow(req: http.IncomingMessage): boolean {
    if (this.offered(req).some((t) => this.token.matches(t))) return true;
    return !!this.opts.tls && !!identify(req, this.opts.roles).role;
  }

  /** allowedNow, or a token the store holds now (the copy may lag a rotation made on another manager). */
  private async allowed(req: http.IncomingMessage): Promise<boolean> {
    if (this.allowedNow(req)) return true;
    for (const t of this.offered(req)) if (await this.token.check(t)) return true;
    return false;
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://dashboard');
    const p = url.pathname;
    res.setHeader('Content-Security-Policy', CSP);
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('Referrer-Policy', 'no-referrer');
    res.setHeader('Cache-Control', 'no-store');
    if (p === '/login' && req.method === 'POST')
      return void this.login(req, res).catch((err: unknown) => this.log.warn({ err }, 'dashboard login failed'));
    if (p === '/logout' && req.method === 'POST') {
      res
        .writeHead(303, { Location: '/', 'Set-Cookie': `${COOKIE}=; Max-Age=0; Path=/; HttpOnly; SameSite=Strict` })
        .end();
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res
        .writeHead(405, { Allow: 'GET', 'Content-Type': 'text/plain' })
        .end('read-only: the dashboard changes nothing\n');
      return;
    }
    this.allowed(req)
      .then((ok) => (ok ? this.serve(p, req, res) : this.refuse(p, res)))
      .catch((err: unknown) => {
        this.log.warn({ err }, 'dashboard request failed');
        if (!res.headersSent) res.writeHead(500, { 'Content-Type': 'text/plain' }).end('internal error\n');
      });
  }

  /** 401: the login form for the page, a line of text for the rest. */
  private refuse(p: string, res: http.ServerResponse): void {
    const page = p === '/' || p === '/index.html';
    res.writeHead(401, {
      'Content-Type': page ? 'text/html; charset=utf-8' : 'text/plain',
      'WWW-Authenticate': 'Bearer realm="shoal dashboard"',
    });
    res.end(page ? loginPage('') : 'unauthorized: log in with the token from `shoal dashboard token`\n');
  }

  /** A request that may look. */
  private serve(p: string, req: http.IncomingMessage, res: http.ServerResponse): void {
    if (p === '/' || p === '/index.html')
      return void res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' }).end(PAGE_HTML);
    if (p === '/app.js')
      return void res.writeHead(200, { 'Content-Type': 'text/javascript; charset=utf-8' }).end(APP_JS);
    if (p === '/app.css') return void res.writeHead(200, { 'Content-Type': 'text/css; charset=utf-8' }).end(APP_CSS);
    if (p === '/api/snapshot')
      return void res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify(this.feed.snapshot()));
    if (p === '/api/feed') return this.stream(req, res);
    const logs = /^\/api\/services\/([A-Za-z0-9]+)\/logs$/.exec(p);
    if (logs)
      return void this.logs(logs[1], req, res).catch((err: unknown) =>
        this.log.warn({ err, service: logs[1] }, 'dashboard log stream failed'),
      );
    res.writeHead(404, { 'Content-Type': 'text/plain' }).end('404 page not found\n');
  }

  private async login(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    let token: string | undefined;
    try {
      token = (await readForm(req)).get('token')?.trim();
    } catch {
      res.writeHead(413).end();
      return;
    }
    // On a mismatch, the stored token: a rotation on another manager may not have reached this one's watch yet.
    if (!(await this.token.check(token))) {
      res
        .writeHead(401, { 'Content-Type': 'text/html; charset=utf-8' })
        .end(
          loginPage(
            this.token.current()
              ? "That is not the swarm's token. Run `shoal dashboard token` against a manager."
              : 'No login token: this node is not a swarm manager, or `shoal dashboard token` has not made one yet.',
          ),
        );
      return;
    }
    const secure = this.opts.tls ? '; Secure' : '';
    res
      .writeHead(303, {
        Location: '/',
        'Set-Cookie': `${COOKIE}=${encodeURIComponent(token!)}; Path=/; HttpOnly; SameSite=Strict${secure}`,
      })
      .end();
  }

  /** Server-sent events: the snapshot first, then patches and swarm events. */
  private stream(req: http.IncomingMessage, res: http.ServerResponse): void {
    this.openStream(req, res);
    const send = (m: FeedMessage) => {
      if (!res.writableEnded) res.write(`data: ${JSON.stringify(m)}\n\n`);
    };
    const off = this.feed.subscribe(send);
    // A comment every 15 s keeps proxies from closing an idle stream and notices a closed page.
    const ping = setInterval(() => {
      if (!res.writableEnded) res.write(': ping\n\n');
    }, 15_000);
    // The response's close: the page went away, or a token rotation ended the stream.
    res.on('close', () => {
      clearInterval(ping);
      off();
    });
  }

  /** A service's logs on demand, followed, as server-sent events (one line each). */
  private async logs(serviceId: string, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const m = this.feed.currentManager();
    const svc = m?.store.viewOne('services', serviceId);
    if (!m || !svc) {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end(`service ${serviceId} not found\n`);
      return;
    }
    const byNode = new Map<string, string[]>();
    for (const t of m.store.tasksBy('service', svc.ID))
      if (t.NodeID) byNode.set(t.NodeID, [...(byNode.get(t.NodeID) ?? []), t.ID]);
    this.openStream(req, res);
    const ac = new AbortController();
    res.on('close', () => ac.abort());
    try {
      await m.logs.logs(
        { byNode, follow: true, tail: 200, joins: (t) => t.ServiceID === svc.ID },
        (nodeId, lines) => {
          for (const l of lines) {
            const t = m.store.viewOne('tasks', l.taskId);
            const head = `${svc.Spec.Name}.${t?.Slot ?? t?.NodeID ?? ''}.${l.taskId.slice(0, 12)}@${m.store.viewOne('nodes', nodeId)?.Description?.Hostname ?? nodeId.slice(0, 12)}`;
            for (const line of Buffer.from(l.data, 'base64').toString('utf8').split('\n')) {
              if (line && !res.writableEnded)
                res.write(`data: ${JSON.stringify({ head, line, err: l.stream === 2 })}\n\n`);
            }
          }
        },
        ac.signal,
      );
    } catch (err) {
      this.log.debug({ err }, 'dashboard log stream ended');
    }
    if (!res.writableEnded) res.end();
  }

  async listen(addr: string): Promise<void> {
    const { host, port } = parseDashboardAddr(addr);
    const handler = (req: http.IncomingMessage, res: http.ServerResponse) => this.handle(req, res);
    const server = this.opts.tls
      ? https.createServer({ ...this.opts.tls, requestCert: true, rejectUnauthorized: false }, handler)
      : http.createServer(handler);
    server.on('connection', (s: Duplex) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
    this.server = server;
    this.log.info({ addr, tls: !!this.opts.tls }, 'dashboard listening');
  }

  /** The port actually bound (for `:0`). */
  get port(): number {
    const a = this.server?.address();
    return typeof a === 'object' && a ? a.port : 0;
  }

  /** Updates the HTTPS certificates (shoald's API TLS reload). */
  setTls(o: SecureContextOptions): void {
    if (this.server instanceof https.Server) this.server.setSecureContext(o);
  }

  close(): void {
    this.offRotate();
    this.server?.close();
    for (const s of this.sockets) s.destroy();
  }
}
