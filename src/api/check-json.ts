import type { IncomingMessage } from 'node:http';
import { badRequest } from '../util/errors.js';

/** RFC 2045 token characters, as Go's mime package takes them. */
const TOKEN = "[!#$%&'*+\\-.^_`|~0-9A-Za-z]+";
const MEDIA_TYPE = new RegExp(`^${TOKEN}(/${TOKEN})?$`);
const PARAM = new RegExp(`^${TOKEN}\\s*=\\s*(${TOKEN}|"(?:[^"\\\\]|\\\\.)*")$`);

/**
 * The media type of a Content-Type value, lowercased, as Go's mime.ParseMediaType gives it;
 * undefined where that returns an error (a bad type, a malformed parameter). A trailing `;` is
 * allowed, as in Go.
 */
export function mediaType(value: string): string | undefined {
  const [base, ...params] = value.split(';');
  const type = base.trim().toLowerCase();
  if (!MEDIA_TYPE.test(type)) return undefined;
  for (let i = 0; i < params.length; i++) {
    const p = params[i].trim();
    if (p === '' && i === params.length - 1) break;
    if (!PARAM.test(p)) return undefined;
  }
  return type;
}

/** Whether the request carries a body as Go's net/http sees it (ContentLength != 0: a length, or chunked). */
function hasBody(req: IncomingMessage): boolean {
  if (req.headers['transfer-encoding'] !== undefined) return true;
  const length = req.headers['content-length'];
  return length !== undefined && Number(length) !== 0;
}

/**
 * dockerd's httputils.CheckForJSON (v20.10): no Content-Type is fine without a body; otherwise
 * it must be application/json (parameters such as charset allowed), else 400. dockerd calls it
 * on container create, update, commit, exec create and start, network create, connect and
 * disconnect, and volume create, and nowhere else (swarm routes and raw uploads do not check).
 */
export function checkForJson(req: IncomingMessage): void {
  const ct = req.headers['content-type'] ?? '';
  if (ct === '' && !hasBody(req)) return;
  if (mediaType(ct) === 'application/json') return;
  throw badRequest(`Content-Type specified (${ct}) must be 'application/json'`);
}
