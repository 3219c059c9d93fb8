import path from 'node:path';
import { Writable } from 'node:stream';
import type { Router } from '../router.js';
import type { Engine } from '../../engine/engine.js';
import { badRequest } from '../../util/errors.js';
import { ProgressStream } from '../../engine/images/progress.js';
import { parseReference, withDefaultTag, type ImageReference } from '../../engine/images/reference.js';
import type { AuthConfig } from '../../engine/images/registry.js';
import { BuildContext } from '../../engine/build/context.js';
import { Builder, BuildStepError } from '../../engine/build/builder.js';

/** A JSON object of string values from the query (`labels`, `buildargs`); dockerd's 400 "error reading …" otherwise. */
function jsonMap(raw: string | null, what: string): Record<string, string | null> {
  if (!raw) return {};
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch (e) {
    throw badRequest(`error reading ${what}: ${(e as Error).message}`);
  }
  if (v === null) return {};
  if (
    typeof v !== 'object' ||
    Array.isArray(v) ||
    !Object.values(v as object).every((x) => x === null || typeof x === 'string')
  ) {
    throw badRequest(
      `error reading ${what}: json: cannot unmarshal ${Array.isArray(v) ? 'array' : typeof v} into Go value of type map[string]string`,
    );
  }
  return v as Record<string, string | null>;
}

/** `-t name[:tag]`, repeatable, deduplicated; a digest is refused as dockerd refuses it. */
function buildTags(names: string[]): ImageReference[] {
  const out = new Map<string, ImageReference>();
  for (const n of names) {
    if (!n) continue;
    const ref = parseReference(n);
    if (ref.digest) throw badRequest('build tag cannot contain a digest');
    const r = withDefaultTag(ref);
    out.set(`${r.domain}/${r.path}:${r.tag}`, r);
  }
  return [...out.values()];
}

/** X-Registry-Config: base64url JSON of registry host → credentials, for a FROM that is pulled. */
function registryConfigs(header: string | undefined): (domain: string) => AuthConfig | undefined {
  let map: Record<string, AuthConfig> = {};
  try {
    if (header) map = JSON.parse(Buffer.from(header, 'base64url').toString('utf8')) as Record<string, AuthConfig>;
  } catch {
    /* dockerd ignores an unreadable header */
  }
  return (domain) => {
    const keys =
      domain === 'docker.io'
        ? ['https://index.docker.io/v1/', 'docker.io', 'index.docker.io']
        : [domain, `https://${domain}`, `http://${domain}`];
    for (const k of keys) if (map[k]) return map[k];
    return undefined;
  };
}

/** `docker build` (DOCKER_BUILDKIT=0) and docker-py's `images.build`: the classic builder. */
export function buildRoutes(router: Router, engine: Engine): void {
  router.post('/build', async (ctx) => {
    const q = ctx.query;
    if (q.get('remote'))
      throw badRequest('remote build contexts are not supported; send the context as the request body');
    const version = q.get('version') ?? '';
    if (version === '2') throw badRequest('buildkit is not supported by this daemon; build with DOCKER_BUILDKIT=0');
    if (version !== '' && version !== '1') throw badRequest(`invalid version ${version}`);
    const tags = buildTags(q.getAll('t'));
    const labels = jsonMap(q.get('labels'), 'labels') as Record<string, string>;
    const buildArgs = jsonMap(q.get('buildargs'), 'build args');
    const quiet = ctx.bool('q');
    const forcerm = ctx.bool('forcerm');
    const gone = new AbortController();
    // The socket, not the response: its close is what a client that hangs up is sure to cause.
    const socket = ctx.req.socket;
    const onGone = () => gone.abort();
    socket.once('close', onGone);
    const context = await BuildContext.unpack(path.join(engine.config.dataRoot, 'tmp'), ctx.req);
    try {
      // Quiet: the steps' output is kept back and shown only with an error; success prints the ID.
      const held: Array<Record<string, unknown>> = [];
      const http = new ProgressStream(() => ctx.stream(200, 'application/json'));
      const holder = new Writable({
        write: (chunk: Buffer, _enc, cb) => {
          held.push(JSON.parse(chunk.toString('utf8')) as Record<string, unknown>);
          cb();
        },
      });
      const out = quiet ? new ProgressStream(() => holder) : http;
      const builder = new Builder(
        engine,
        context,
        {
          dockerfile: q.get('dockerfile') || 'Dockerfile',
          tags,
          rm: forcerm || ctx.bool('rm', true),
          forcerm,
          buildArgs: Object.fromEntries(Object.entries(buildArgs).filter(([, v]) => v !== null)) as Record<
            string,
            string
          >,
          labels,
          auth: registryConfigs(ctx.req.headers['x-registry-config'] as string | undefined),
          signal: gone.signal,
        },
        out,
      );
      const steps = builder.parse();
      try {
        const id = await builder.run(steps);
        if (quiet) http.stream(`${id}\n`);
      } catch (e) {
        if (quiet) for (const m of held) http.write(m);
        else if (!http.started && !(e instanceof BuildStepError)) throw e;
        const message = (e as Error).message;
        const code = e instanceof BuildStepError ? e.code : undefined;
        http.write(
          code === undefined
            ? { errorDetail: { message }, error: message }
            : { errorDetail: { code, message }, error: message },
        );
      }
      http.end();
    } finally {
      socket.off('close', onGone);
      context.remove();
    }
  });
}
