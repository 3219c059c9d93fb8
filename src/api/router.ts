import type { RequestContext } from './context.js';

/** What a handler returns: a value sent as JSON with `status` (default 200), or nothing. */
export type HandlerResult = void | undefined | { status?: number; body?: unknown; headers?: Record<string, string> };
export type Handler = (ctx: RequestContext) => Promise<HandlerResult> | HandlerResult;

interface Route {
  method: string;
  /** As registered, e.g. `/services/:id/update`: what access rules name. */
  path: string;
  pattern: RegExp;
  keys: string[];
  handler: Handler;
}

/**
 * Method + path routing. `:name` matches one segment; `:name*` matches the rest, slashes
 * included (image names such as `localhost:5000/a/b:tag`).
 */
export class Router {
  private readonly routes: Route[] = [];

  add(method: string, path: string, handler: Handler): this {
    const keys: string[] = [];
    const src = path
      .split('/')
      .map((seg) => {
        const m = /^:(\w+)(\*)?$/.exec(seg);
        if (!m) return seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
        keys.push(m[1]);
        return m[2] ? '(.+?)' : '([^/]+)';
      })
      .join('/');
    this.routes.push({ method, path, pattern: new RegExp(`^${src}/?$`), keys, handler });
    return this;
  }

  get(p: string, h: Handler) {
    return this.add('GET', p, h);
  }
  post(p: string, h: Handler) {
    return this.add('POST', p, h);
  }
  put(p: string, h: Handler) {
    return this.add('PUT', p, h);
  }
  delete(p: string, h: Handler) {
    return this.add('DELETE', p, h);
  }
  head(p: string, h: Handler) {
    return this.add('HEAD', p, h);
  }

  /** Finds the handler; `methodMismatch` tells a 405 from a 404. */
  match(
    method: string,
    path: string,
  ): { handler: Handler; params: Record<string, string>; pattern: string } | { methodMismatch: boolean } {
    let methodMismatch = false;
    for (const r of this.routes) {
      const m = r.pattern.exec(path);
      if (!m) continue;
      if (r.method !== method && !(method === 'HEAD' && r.method === 'GET')) {
        methodMismatch = true;
        continue;
      }
      const params: Record<string, string> = {};
      r.keys.forEach((k, i) => (params[k] = decodeURIComponent(m[i + 1])));
      return { handler: r.handler, params, pattern: r.path };
    }
    return { methodMismatch };
  }
}
