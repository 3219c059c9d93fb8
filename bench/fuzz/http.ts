import net from 'node:net';

/** One request as the fuzzer sends it: bytes on a fresh unix-socket connection, nothing checked on the way out. */
export interface RawRequest {
  method: string;
  /** The request target exactly as sent (may be garbage). */
  target: string;
  headers?: [string, string][];
  body?: Buffer | string;
  /** Send this instead of building the request (odd HTTP: broken framing and the like). */
  raw?: Buffer;
}

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

/** The connection closed (or timed out) without a complete answer. */
export class NoAnswer extends Error {
  /**
   * The server closed while a large body was still being written: it may have answered early
   * and closed, as dockerd may too (the answer is lost with the socket), so this is not a fault.
   */
  closedEarly = false;
}

/** Bodies up to this size sit whole in the socket buffer: a closed connection then means no answer. */
const BUFFERED_BYTES = 64 * 1024;

/**
 * Sends one request and reads the whole answer (Connection: close). A hand-rolled client on
 * purpose: node's own refuses the malformed requests the fuzzer must be able to send.
 */
export function send(socketPath: string, r: RawRequest, timeoutMs: number): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(socketPath);
    const chunks: Buffer[] = [];
    let done = false;
    const finish = (err?: Error) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      if (err) return reject(err);
      try {
        resolve(parseResponse(Buffer.concat(chunks)));
      } catch (e) {
        reject(e);
      }
    };
    const timer = setTimeout(() => finish(new NoAnswer(`no answer within ${timeoutMs} ms`)), timeoutMs);
    sock.on('data', (c) => chunks.push(c));
    sock.on('end', () => finish());
    sock.on('close', () => finish());
    // A reset after the answer was read is fine: the server may close before reading a huge body.
    sock.on('error', (e) => {
      if (chunks.length) return finish();
      const err = new NoAnswer(`connection error: ${e.message}`);
      err.closedEarly =
        bodyBytes > BUFFERED_BYTES && ['EPIPE', 'ECONNRESET'].includes((e as NodeJS.ErrnoException).code ?? '');
      finish(err);
    });
    let bodyBytes = 0;
    sock.on('connect', () => {
      if (r.raw) {
        sock.write(r.raw);
        return;
      }
      const body = r.body === undefined ? undefined : Buffer.isBuffer(r.body) ? r.body : Buffer.from(r.body);
      const headers: [string, string][] = [['Host', 'docker'], ['Connection', 'close'], ...(r.headers ?? [])];
      if (body) headers.push(['Content-Type', 'application/json'], ['Content-Length', String(body.length)]);
      const head = `${r.method} ${r.target} HTTP/1.1\r\n${headers.map(([k, v]) => `${k}: ${v}`).join('\r\n')}\r\n\r\n`;
      bodyBytes = body?.length ?? 0;
      // One write: a small request is wholly in the server's buffer before it can answer and close.
      sock.write(body ? Buffer.concat([Buffer.from(head, 'latin1'), body]) : head);
    });
  });
}

function parseResponse(buf: Buffer): RawResponse {
  const end = buf.indexOf('\r\n\r\n');
  if (end < 0)
    throw new NoAnswer(
      buf.length
        ? `incomplete answer: ${JSON.stringify(buf.subarray(0, 200).toString())}`
        : 'connection closed without an answer',
    );
  const lines = buf.subarray(0, end).toString('latin1').split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0]);
  if (!m) throw new NoAnswer(`bad status line: ${JSON.stringify(lines[0])}`);
  const headers: Record<string, string> = {};
  for (const l of lines.slice(1)) {
    const i = l.indexOf(':');
    if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
  }
  let body = buf.subarray(end + 4);
  if (/chunked/i.test(headers['transfer-encoding'] ?? '')) body = dechunk(body);
  return { status: Number(m[1]), headers, body };
}

function dechunk(b: Buffer): Buffer {
  const out: Buffer[] = [];
  let i = 0;
  while (i < b.length) {
    const eol = b.indexOf('\r\n', i);
    if (eol < 0) break;
    const size = parseInt(b.subarray(i, eol).toString(), 16);
    if (!size) break;
    out.push(b.subarray(eol + 2, eol + 2 + size));
    i = eol + 2 + size + 2;
  }
  return Buffer.concat(out);
}
