/** The JSON progress stream dockerd writes for pull, push, load and import, started lazily. */
import type { Writable } from 'node:stream';
import { jsonMessage } from '../../net/streams.js';

export interface ProgressDetail {
  current?: number;
  total?: number;
}

/**
 * Opens the HTTP stream only when the first line is written: an error before that can still
 * be a plain HTTP error (a 404 for an unknown image), as dockerd answers.
 */
export class ProgressStream {
  private out: Writable | undefined;
  private lastReport = new Map<string, number>();

  constructor(private readonly open: () => Writable) {}

  get started(): boolean {
    return this.out !== undefined;
  }

  write(msg: Record<string, unknown>): void {
    this.out ??= this.open();
    jsonMessage(this.out, msg);
  }

  status(status: string, id?: string): void {
    this.write(id === undefined ? { status } : { status, progressDetail: {}, id });
  }

  /** A byte-count update, at most one per 256 KiB per id so big layers do not flood the client. */
  bytes(status: string, id: string, current: number, total?: number): void {
    const last = this.lastReport.get(`${status}/${id}`) ?? -Infinity;
    if (current - last < 256 * 1024 && current !== total) return;
    this.lastReport.set(`${status}/${id}`, current);
    const progressDetail: ProgressDetail = total ? { current, total } : { current };
    this.write({ status, progressDetail, progress: progressBar(current, total), id });
  }

  stream(text: string): void {
    this.write({ stream: text });
  }

  aux(aux: Record<string, unknown>): void {
    this.write({ progressDetail: {}, aux });
  }

  error(message: string): void {
    this.write({ errorDetail: { message }, error: message });
  }

  end(): void {
    this.out?.end();
  }
}

/** `[=====>       ]  1.2MB/3.4MB`, the legacy text form older clients print. */
export function progressBar(current: number, total?: number): string {
  const width = 50;
  if (!total || total <= 0) return humanSize(current);
  const filled = Math.min(width, Math.floor((current / total) * width));
  const bar =
    '='.repeat(Math.max(0, filled - 1)) +
    (filled > 0 ? (filled === width ? '=' : '>') : '') +
    ' '.repeat(width - filled);
  return `[${bar}] ${humanSize(current).padStart(8)}/${humanSize(total)}`;
}

/** Decimal units as Docker's go-units HumanSize prints them: `4.2MB`, `980kB`. */
export function humanSize(n: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB', 'PB'];
  let i = 0;
  let v = n;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${Number(v.toPrecision(4))}${units[i]}`;
}
