/**
 * Reading a JSON request body under a size limit. The limit is checked on Content-Length first
 * and then on every chunk as it arrives, so an oversized body is refused after at most `limit`
 * bytes were held, never read whole. Raw uploads (`docker load`, `import`, archive PUTs) do not
 * come here: their routes stream `ctx.req` themselves, without a limit.
 */
import type { Readable } from 'node:stream';
import { ApiError } from '../../util/errors.js';

/** dockerd has no limit on JSON bodies; shoal's is larger than any spec the CLI sends (secret data ≤ 500 KiB, config ≤ 1000 KiB, base64). */
export const MAX_JSON_BODY = 4 * 1024 * 1024;

export const tooLarge = (limit: number) =>
  new ApiError(413, `request body too large: a JSON body may have at most ${limit} bytes`);

/**
 * After a 413: the rest of the body is read and thrown away (nothing is kept), so that the
 * client, still sending, gets to read the answer: closing a socket with unread input resets
 * the connection and loses it. A client that sends on for more than `ms` is cut off.
 */
export function discardRest(req: Readable & { socket?: { destroy(): void } }, ms = 10_000): void {
  if (req.readableEnded) return;
  const timer = setTimeout(() => req.socket?.destroy(), ms);
  timer.unref();
  const stop = () => clearTimeout(timer);
  req.once('end', stop);
  req.once('close', stop);
  req.on('data', () => undefined);
  req.resume();
}

/**
 * Collects at most `limit` bytes of `stream`; rejects with the 413 as soon as there are more.
 * Listeners, not `for await`: leaving an async iterator early destroys the request, and with it
 * the socket the 413 must go out on. The rest of an oversized body is left to discardRest.
 */
export function readLimited(stream: Readable, limit: number, contentLength?: string | number): Promise<Buffer> {
  if (contentLength !== undefined && contentLength !== '' && Number(contentLength) > limit)
    return Promise.reject(tooLarge(limit));
  if (stream.readableEnded) return Promise.resolve(Buffer.alloc(0));
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let total = 0;
    const done = () => {
      stream.off('data', onData);
      stream.off('end', onEnd);
      stream.off('error', onError);
      stream.off('close', onClose);
    };
    const onData = (c: Buffer | string) => {
      const b = typeof c === 'string' ? Buffer.from(c) : c;
      total += b.length;
      if (total > limit) {
        done();
        stream.pause();
        reject(tooLarge(limit));
        return;
      }
      parts.push(b);
    };
    const onEnd = () => {
      done();
      resolve(Buffer.concat(parts, total));
    };
    const onError = (e: Error) => {
      done();
      reject(e);
    };
    // A client that goes away mid-body: what came is all there is (the answer goes nowhere).
    const onClose = () => {
      done();
      resolve(Buffer.concat(parts, total));
    };
    stream.on('data', onData);
    stream.once('end', onEnd);
    stream.once('error', onError);
    stream.once('close', onClose);
  });
}
