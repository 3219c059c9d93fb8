import type { Writable } from 'node:stream';

export const STDIN = 0;
export const STDOUT = 1;
export const STDERR = 2;

/** Docker's multiplexed stream frame: [stream, 0, 0, 0, size (big endian u32)] + payload. */
export function frame(stream: number, payload: Buffer): Buffer {
  const header = Buffer.alloc(8);
  header[0] = stream;
  header.writeUInt32BE(payload.length, 4);
  return Buffer.concat([header, payload]);
}

/** Writes to `out` either framed (no TTY) or raw (TTY), as dockerd does. */
export function streamWriter(out: Writable, tty: boolean): (stream: number, payload: Buffer) => boolean {
  return (stream, payload) => (payload.length === 0 ? true : out.write(tty ? payload : frame(stream, payload)));
}

/** One line of a JSON progress stream (pull, push, load). */
export function jsonMessage(out: Writable, msg: Record<string, unknown>): void {
  out.write(JSON.stringify(msg) + '\r\n');
}
