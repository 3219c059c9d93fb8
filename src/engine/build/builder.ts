/**
 * `docker build` with the classic builder (dockerd's builder/dockerfile, not BuildKit): each
 * Dockerfile step runs through the engine itself. RUN creates and starts a container from the
 * current image, waits for it and commits its changes as a layer; COPY/ADD and WORKDIR change a
 * created (never started) container's root and commit it; the other steps only change the run
 * settings and make a new image config over the same layers.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Engine } from '../engine.js';
import type { ImageConfig } from '../types.js';
import { ApiError, badRequest } from '../../util/errors.js';
import { commitConfig, commitLayer } from '../images/commit.js';
import { applyChanges, keyValues } from '../images/changes.js';
import { pullImage } from '../images/pull.js';
import type { ProgressStream } from '../images/progress.js';
import { parseReference, withDefaultTag, type ImageReference } from '../images/reference.js';
import type { AuthConfig } from '../images/registry.js';
import { changesLayer, resolveInRoot, upperChanges } from '../containers/files.js';
import { followLog } from '../containers/logs.js';
import type { BuildContext } from './context.js';
import { execForm, expand, parseDockerfile, type Instruction } from './dockerfile.js';

export interface BuildOptions {
  dockerfile: string;
  tags: ImageReference[];
  /** Remove intermediate containers after a successful step (dockerd's default). */
  rm: boolean;
  /** Remove them always, failed steps too. */
  forcerm: boolean;
  buildArgs: Record<string, string | null>;
  labels: Record<string, string>;
  /** Registry credentials by registry host (X-Registry-Config), for a FROM that must be pulled. */
  auth: (domain: string) => AuthConfig | undefined;
  /** The client went away: the running step's container is killed and the build stops, as dockerd cancels it. */
  signal?: AbortSignal;
}

/** A step that failed the way dockerd reports in the stream: message and, for RUN, the exit code. */
export class BuildStepError extends Error {
  constructor(
    message: string,
    readonly code?: number,
  ) {
    super(message);
  }
}

type RunConfig = ImageConfig & { OnBuild?: string[]; Shell?: string[] };

const DEFAULT_SHELL = ['/bin/sh', '-c'];
const shortId = (id: string) => id.replace(/^sha256:/, '').slice(0, 12);
/** Go's %q of a string slice, as dockerd writes `CMD ["/bin/sh" "-c" "…"]` into history. */
const goQuoted = (a: string[]) => `[${a.map((s) => JSON.stringify(s)).join(' ')}]`;

export class Builder {
  private imageId = '';
  private config: RunConfig = {};
  /** ARG values in scope (with --build-arg overrides), as `K=V`. */
  private args: string[] = [];
  private readonly temps = new Set<string>();

  constructor(
    private readonly engine: Engine,
    private readonly context: BuildContext,
    private readonly o: BuildOptions,
    private readonly out: ProgressStream,
  ) {}

  /** Parses before anything is written, so a bad Dockerfile is a plain HTTP error (400, or 500 when missing). */
  parse(): Instruction[] {
    const steps = parseDockerfile(this.context.dockerfile(this.o.dockerfile));
    const firstReal = steps.find((s) => s.name !== 'ARG');
    if (!firstReal) throw badRequest('the Dockerfile (Dockerfile) cannot be empty');
    if (firstReal.name !== 'FROM')
      throw badRequest(`dockerfile parse error line ${firstReal.line}: no build stage in current context`);
    // --label values become LABEL steps at the end, sorted as dockerd does.
    for (const k of Object.keys(this.o.labels).sort()) {
      const v = this.o.labels[k];
      steps.push({
        name: 'LABEL',
        args: `${JSON.stringify(k)}=${JSON.stringify(v)}`,
        original: `LABEL ${JSON.stringify(k)}=${JSON.stringify(v)}`,
        line: 0,
      });
    }
    return steps;
  }

  /** Runs every step; returns the image ID. */
  async run(steps: Instruction[]): Promise<string> {
    try {
      let n = 0;
      for (const step of steps) {
        if (this.o.signal?.aborted) throw new BuildStepError('Build cancelled');
        this.out.stream(`Step ${++n}/${steps.length} : ${step.original}\n`);
        await this.dispatch(step);
        if (step.name !== 'ARG' || this.imageId) this.out.stream(` ---> ${shortId(this.imageId)}\n`);
      }
      this.out.aux({ ID: this.imageId });
      this.out.stream(`Successfully built ${shortId(this.imageId)}\n`);
      for (const t of this.o.tags) {
        this.engine.images.setReference(t, this.imageId);
        this.out.stream(`Successfully tagged ${familiarTag(t)}\n`);
      }
      return this.imageId;
    } finally {
      if (this.o.forcerm) await this.removeTemps();
    }
  }

  private env(): string[] {
    return [...this.args, ...(this.config.Env ?? [])];
  }

  private async dispatch(s: Instruction): Promise<void> {
    const word = (w: string) => expand(w, this.env());
    switch (s.name) {
      case 'FROM':
        return this.from(word(s.args.split(/\s+/)[0]));
      case 'ARG':
        return this.arg(s.args);
      case 'RUN':
        return this.runStep(s.args);
      case 'COPY':
      case 'ADD':
        return this.copy(s.name, s.args);
      case 'WORKDIR': {
        const dir = word(s.args);
        this.config.WorkingDir = dir.startsWith('/')
          ? path.posix.normalize(dir)
          : path.posix.join(this.config.WorkingDir || '/', dir);
        return this.fsStep(`WORKDIR ${this.config.WorkingDir}`, (root) => {
          fs.mkdirSync(resolveInRoot(root, this.config.WorkingDir!), { recursive: true });
        });
      }
      case 'CMD':
      case 'ENTRYPOINT': {
        const form = execForm(s.args) ?? (s.args === '' ? [] : [...(this.config.Shell ?? DEFAULT_SHELL), s.args]);
        if (s.name === 'CMD') this.config.Cmd = form;
        else {
          this.config.Entrypoint = form;
          // An ENTRYPOINT resets a CMD inherited from the base image, as dockerd does.
          if (!this.cmdSet) this.config.Cmd = undefined;
        }
        if (s.name === 'CMD') this.cmdSet = true;
        return this.metaStep(`${s.name} ${goQuoted(form)}`);
      }
      case 'ENV': {
        const pairs = keyValues(s.args, 'ENV').map(([k, v]) => [k, word(v)] as const);
        const env = [...(this.config.Env ?? [])];
        for (const [k, v] of pairs) {
          const i = env.findIndex((e) => e.split('=')[0] === k);
          if (i >= 0) env[i] = `${k}=${v}`;
          else env.push(`${k}=${v}`);
        }
        this.config.Env = env;
        return this.metaStep(`ENV ${pairs.map(([k, v]) => `${k}=${v}`).join(' ')}`);
      }
      case 'LABEL': {
        const pairs = keyValues(s.args, 'LABEL').map(([k, v]) => [word(k), word(v)] as const);
        this.config.Labels = { ...(this.config.Labels ?? {}), ...Object.fromEntries(pairs) };
        return this.metaStep(`LABEL ${pairs.map(([k, v]) => `${k}=${v}`).join(' ')}`);
      }
      case 'SHELL': {
        const form = execForm(s.args);
        if (!form || form.length === 0) throw new BuildStepError('SHELL requires the arguments to be in JSON form');
        this.config.Shell = form;
        return this.metaStep(`SHELL ${goQuoted(form)}`);
      }
      case 'MAINTAINER':
        return this.metaStep(`MAINTAINER ${s.args}`);
      default: {
        // EXPOSE, USER, VOLUME, STOPSIGNAL, HEALTHCHECK, ONBUILD: the same rules as `commit --change`.
        const line = `${s.name} ${['EXPOSE', 'USER', 'VOLUME', 'STOPSIGNAL'].includes(s.name) ? word(s.args) : s.args}`;
        try {
          this.config = applyChanges(this.config, [line]) as RunConfig;
        } catch (e) {
          throw new BuildStepError((e as Error).message);
        }
        return this.metaStep(line);
      }
    }
  }

  private cmdSet = false;

  private async from(name: string): Promise<void> {
    if (!name) throw new BuildStepError('base name (FROM) should not be blank');
    if (name.toLowerCase() === 'scratch') throw new BuildStepError('FROM scratch is not supported by this builder');
    const store = this.engine.images;
    let image = store.find(name)?.image;
    if (!image) {
      let ref: ImageReference;
      try {
        ref = withDefaultTag(parseReference(name));
      } catch (e) {
        throw new BuildStepError((e as Error).message);
      }
      await pullImage(store, ref, this.o.auth(ref.domain), this.out);
      image = store.lookup(name);
    }
    this.imageId = image.id;
    this.config = structuredClone((image.config.config ?? {}) as RunConfig);
    this.cmdSet = false;
  }

  /** `ARG NAME[=default]`: a --build-arg given for it wins. */
  private arg(args: string): void {
    const [k, ...rest] = args.split('=');
    const name = k.trim();
    const given = this.o.buildArgs[name];
    const value = given ?? (rest.length ? expand(rest.join('=').replace(/^"(.*)"$/, '$1'), this.env()) : undefined);
    this.args = this.args.filter((a) => a.split('=')[0] !== name);
    if (value !== undefined) this.args.push(`${name}=${value}`);
    if (this.imageId) return this.metaStep(`ARG ${name}${value !== undefined ? `=${value}` : ''}`);
  }

  private metaStep(comment: string): void {
    this.imageId = commitConfig(this.engine.images, {
      parentId: this.imageId,
      config: this.config as Record<string, unknown>,
      createdBy: `${(this.config.Shell ?? DEFAULT_SHELL).join(' ')} #(nop)  ${comment}`,
    });
  }

  /** RUN: a container from the current image runs the command; a non-zero exit fails the build. */
  private async runStep(args: string): Promise<void> {
    const argv = execForm(args) ?? [...(this.config.Shell ?? DEFAULT_SHELL), args];
    const m = this.engine.containers;
    const { Id: id } = await m.create({
      config: {
        Image: this.imageId,
        Cmd: argv,
        Entrypoint: [],
        Env: [
          ...(this.config.Env ?? []),
          ...this.args.filter((a) => !(this.config.Env ?? []).some((e) => e.split('=')[0] === a.split('=')[0])),
        ],
        WorkingDir: this.config.WorkingDir ?? '',
        User: this.config.User ?? '',
        Labels: this.config.Labels ?? {},
      },
    });
    this.temps.add(id);
    this.out.stream(` ---> Running in ${shortId(id)}\n`);
    const seq = m.exits(id);
    const exit = m.wait(id, 'next-exit');
    const ac = new AbortController();
    // The container's output goes into the build stream line by line, as dockerd attaches it.
    const follow = followLog(m.paths(id).log, {
      offset: 0,
      onEntry: (e) => this.out.stream(e.data.toString('utf8')),
      done: () => m.exits(id) !== seq || !m.find(id),
      signal: ac.signal,
    });
    const cancel = () => void m.kill(id).catch(() => undefined);
    try {
      await m.start(id);
    } catch (e) {
      ac.abort();
      throw e;
    }
    // Output may reach the client (and the client hang up) before start returns.
    this.o.signal?.addEventListener('abort', cancel);
    if (this.o.signal?.aborted) cancel();
    const { StatusCode } = await exit.finally(() => this.o.signal?.removeEventListener('abort', cancel));
    await follow;
    if (this.o.signal?.aborted) {
      await m.remove(id, { force: true, volumes: true }).catch(() => undefined);
      this.temps.delete(id);
      throw new BuildStepError('Build cancelled');
    }
    if (StatusCode !== 0)
      throw new BuildStepError(`The command '${argv.join(' ')}' returned a non-zero code: ${StatusCode}`, StatusCode);
    await this.commitContainer(id, argv.join(' '));
  }

  /** COPY/ADD of context files (ADD of a URL is refused: it needs a download the builder does not do). */
  private async copy(name: string, args: string): Promise<void> {
    const words = (execForm(args) ?? args.split(/\s+/)).map((w) => expand(w, this.env()));
    const flags = words.filter((w) => w.startsWith('--'));
    if (flags.length) throw new BuildStepError(`${name} ${flags[0].split('=')[0]} is not supported by this builder`);
    if (words.length < 2)
      throw new BuildStepError(
        `${name} requires at least two arguments, but only one was provided. Destination could not be determined.`,
      );
    const srcs = words.slice(0, -1);
    let dest = words[words.length - 1];
    if (!dest.startsWith('/'))
      dest = path.posix.join(this.config.WorkingDir || '/', dest) + (dest.endsWith('/') ? '/' : '');
    if (name === 'ADD' && srcs.some((s) => /^https?:\/\//.test(s)))
      throw new BuildStepError('ADD from a URL is not supported by this builder');
    const hosts = srcs.map((s) => {
      const h = this.context.resolve(s);
      if (!fs.existsSync(h))
        throw new BuildStepError(
          `${name} failed: file not found in build context or excluded by .dockerignore: stat ${s}: file does not exist`,
        );
      return h;
    });
    const toDir = dest.endsWith('/') || srcs.length > 1;
    await this.fsStep(`${name} ${srcs.join(' ')} in ${dest}`, (root) => {
      for (const h of hosts) {
        const st = fs.statSync(h);
        if (st.isDirectory()) copyTree(h, root, dest);
        else copyEntry(h, root, toDir ? path.posix.join(dest, path.basename(h)) : dest);
      }
    });
  }

  /** A step that changes files: done in a created container's root, then committed as a layer. */
  private async fsStep(comment: string, change: (root: string) => void | Promise<void>): Promise<void> {
    const m = this.engine.containers;
    const createdBy = `${(this.config.Shell ?? DEFAULT_SHELL).join(' ')} #(nop)  ${comment}`;
    const { Id: id } = await m.create({
      config: { Image: this.imageId, Cmd: [...DEFAULT_SHELL, `#(nop)  ${comment}`], Entrypoint: [] },
    });
    this.temps.add(id);
    await m.withRootfs(id, async (root) => {
      await change(root);
    });
    await this.commitContainer(id, createdBy);
  }

  private async commitContainer(id: string, createdBy: string): Promise<void> {
    const m = this.engine.containers;
    const { upper, lower } = await m.layers(id);
    const diff = await upperChanges(upper, lower);
    this.imageId = await commitLayer(this.engine.images, changesLayer(diff), {
      parentId: this.imageId,
      containerConfig: this.config as Record<string, unknown>,
      changes: [],
      createdBy,
    });
    if (this.o.rm) await this.removeTemps();
  }

  private async removeTemps(): Promise<void> {
    for (const id of [...this.temps]) {
      try {
        await this.engine.containers.remove(id, { force: true, volumes: true });
        this.out.stream(`Removing intermediate container ${shortId(id)}\n`);
      } catch (e) {
        if (!(e instanceof ApiError && e.status === 404))
          this.out.stream(`Error removing intermediate container ${shortId(id)}: ${(e as Error).message}\n`);
      }
      this.temps.delete(id);
    }
  }
}

function familiarTag(r: ImageReference): string {
  const name = r.domain === 'docker.io' ? r.path.replace(/^library\//, '') : `${r.domain}/${r.path}`;
  return `${name}:${r.tag ?? 'latest'}`;
}

/** One file or symlink from the context to `ctrPath` in the root, owned by root, resolved inside it. */
function copyEntry(host: string, root: string, ctrPath: string): void {
  const target = resolveInRoot(root, ctrPath);
  fs.mkdirSync(path.dirname(target), { recursive: true });
  const st = fs.lstatSync(host);
  fs.rmSync(target, { force: true, recursive: false });
  if (st.isSymbolicLink()) fs.symlinkSync(fs.readlinkSync(host), target);
  else {
    fs.copyFileSync(host, target);
    fs.chmodSync(target, st.mode & 0o7777);
    fs.utimesSync(target, st.atime, st.mtime);
  }
  fs.lchownSync(target, 0, 0);
}

/** A directory's contents (not the directory itself, as COPY does) under `ctrDir`. */
function copyTree(hostDir: string, root: string, ctrDir: string): void {
  const dir = resolveInRoot(root, ctrDir, true);
  fs.mkdirSync(dir, { recursive: true });
  for (const e of fs.readdirSync(hostDir, { withFileTypes: true })) {
    const h = path.join(hostDir, e.name);
    const c = path.posix.join(ctrDir, e.name);
    if (e.isDirectory()) {
      copyTree(h, root, c);
      const t = resolveInRoot(root, c, true);
      fs.chmodSync(t, fs.statSync(h).mode & 0o7777);
      fs.chownSync(t, 0, 0);
    } else copyEntry(h, root, c);
  }
}
