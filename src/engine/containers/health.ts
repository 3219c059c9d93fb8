import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { ContainerRecord, HealthState } from './record.js';
import { RUNC } from './runtime.js';
import { processSpec } from './spec.js';

/** `Config.Healthcheck` (durations in nanoseconds), as `--health-*` flags and HEALTHCHECK set it. */
export interface Healthcheck {
  Test?: string[];
  Interval?: number;
  Timeout?: number;
  StartPeriod?: number;
  Retries?: number;
}

const MAX_LOG = 5;
const MAX_OUTPUT = 4096;
const s = (ns: number | undefined, dflt: number) => (ns && ns > 0 ? ns / 1e6 : dflt);

/** The probe's argv, or undefined when the container has no (or a NONE) health check. */
export function probeArgs(h: Healthcheck | undefined): string[] | undefined {
  const t = h?.Test;
  if (!t || t.length === 0 || t[0] === 'NONE') return undefined;
  if (t[0] === 'CMD-SHELL') return ['/bin/sh', '-c', t.slice(1).join(' ')];
  if (t[0] === 'CMD') return t.slice(1);
  return ['/bin/sh', '-c', t.join(' ')];
}

/**
 * The image's HEALTHCHECK under the container's own (dockerd's config merge): no health check
 * given takes the image's; one given fills only its unset fields from the image's, so
 * `--no-healthcheck` (Test ["NONE"]) turns the image's off.
 */
export function mergeHealthcheck(
  own: Healthcheck | undefined,
  image: Healthcheck | undefined,
): Healthcheck | undefined {
  if (!image) return own;
  if (!own) return { ...image };
  return {
    ...own,
    Test: own.Test?.length ? own.Test : image.Test,
    Interval: own.Interval || image.Interval,
    Timeout: own.Timeout || image.Timeout,
    StartPeriod: own.StartPeriod || image.StartPeriod,
    Retries: own.Retries || image.Retries,
  };
}

/**
 * Runs a container's health probe every Interval with `runc exec`, as dockerd does: Retries
 * failures in a row make it unhealthy, failures in StartPeriod do not count, a probe over
 * Timeout is killed and fails.
 */
export class HealthMonitor {
  private timer?: NodeJS.Timeout;
  private stopped = false;
  private readonly startedAt = Date.now();

  constructor(
    private readonly rec: ContainerRecord,
    private readonly runcRoot: string,
    private readonly p: { rootfs: string; run: string },
    private readonly onChange: (statusChanged: boolean) => void,
  ) {}

  start(): void {
    if (!probeArgs(this.rec.config.Healthcheck as Healthcheck | undefined)) return;
    this.rec.state.Health ??= { Status: 'starting', FailingStreak: 0, Log: [] };
    this.schedule();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }

  private schedule(): void {
    if (this.stopped) return;
    const h = this.rec.config.Healthcheck as Healthcheck;
    this.timer = setTimeout(
      () =>
        void this.probe()
          .finally(() => this.schedule())
          .catch(() => undefined /* no logger here: a probe's failures go to the health log */),
      s(h.Interval, 30_000),
    );
    this.timer.unref();
  }

  private async probe(): Promise<void> {
    const h = this.rec.config.Healthcheck as Healthcheck;
    const args = probeArgs(h)!;
    const start = new Date();
    const result = await this.exec(args, s(h.Timeout, 30_000));
    if (this.stopped) return;
    const health = this.rec.state.Health as HealthState;
    const before = health.Status;
    health.Log.push({
      Start: start.toISOString(),
      End: new Date().toISOString(),
      ExitCode: result.code,
      Output: result.output,
    });
    if (health.Log.length > MAX_LOG) health.Log.splice(0, health.Log.length - MAX_LOG);
    if (result.code === 0) {
      health.Status = 'healthy';
      health.FailingStreak = 0;
    } else if (Date.now() - this.startedAt >= s(h.StartPeriod, 0) || health.Status !== 'starting') {
      health.FailingStreak++;
      if (health.FailingStreak >= (h.Retries && h.Retries > 0 ? h.Retries : 3)) health.Status = 'unhealthy';
    }
    this.onChange(before !== health.Status);
  }

  private exec(args: string[], timeoutMs: number): Promise<{ code: number; output: string }> {
    const r = this.rec;
    const spec = processSpec(this.p.rootfs, args, r.config.Env ?? [], {
      tty: false,
      user: r.config.User,
      cwd: r.config.WorkingDir,
    });
    const file = path.join(this.p.run, 'health.json');
    const pidFile = path.join(this.p.run, 'health.pid');
    fs.writeFileSync(file, JSON.stringify(spec));
    return new Promise((resolve) => {
      const child = spawn(RUNC, ['--root', this.runcRoot, 'exec', '--pid-file', pidFile, '--process', file, r.id], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let output = '';
      const take = (b: Buffer) => {
        if (output.length < MAX_OUTPUT) output += b.toString().slice(0, MAX_OUTPUT - output.length);
      };
      child.stdout.on('data', take);
      child.stderr.on('data', take);
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        // Killing runc would leave the probe running in the container: kill the probe itself.
        try {
          process.kill(Number(fs.readFileSync(pidFile, 'utf8')), 'SIGKILL');
        } catch {
          child.kill('SIGKILL');
        }
      }, timeoutMs);
      child.on('close', (code) => {
        clearTimeout(timer);
        if (timedOut) resolve({ code: -1, output: `Health check exceeded timeout (${timeoutMs / 1000}s)` });
        else resolve({ code: code ?? -1, output });
      });
      child.on('error', (e) => {
        clearTimeout(timer);
        resolve({ code: -1, output: e.message });
      });
    });
  }
}
