import type { RunResult } from '../src/util/run.js';

/** What the benchmarks read from one wrk run (`wrk --latency`). */
export interface WrkResult {
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
}

/** The arguments of the runs the benchmarks compare: 1 thread, 8 connections, with latency. */
export const wrkArgs = (seconds: number, url: string) => ['--latency', '-t1', '-c8', `-d${seconds}s`, url];

/** wrk prints times as 635.91us, 1.20ms, 2.00s or 1.00m. */
function toMs(v: string): number {
  const m = /^([\d.]+)(us|ms|s|m|h)$/.exec(v);
  if (!m) throw new Error(`wrk time ${v}`);
  return +(
    Number(m[1]) * { us: 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as 'us' | 'ms' | 's' | 'm' | 'h']
  ).toFixed(3);
}

/** Requests/s and the p50/p99 of wrk's output; throws when it has none of them. */
export function parseWrk(r: RunResult): WrkResult {
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(r.stdout);
  // "Latency Distribution" lines: "     50%  635.91us" … "     99%    1.20ms".
  const at = (p: number) => new RegExp(`^\\s+${p}%\\s+(\\S+)$`, 'm').exec(r.stdout)?.[1];
  const p50 = at(50);
  const p99 = at(99);
  if (!rps || !p50 || !p99) throw new Error(`wrk: ${r.stdout}${r.stderr}`);
  return { requestsPerSecond: Number(rps[1]), p50Ms: toMs(p50), p99Ms: toMs(p99) };
}
