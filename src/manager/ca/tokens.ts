import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Join tokens: SWMTKN-1-<sha256 of the root CA PEM, base 36, 50 chars>-<16 random bytes, base 36, 25 chars>.
 * The digest lets a joining node check the CA it is shown before trusting it.
 */
const PREFIX = 'SWMTKN';
const VERSION = '1';

function base36(buf: Buffer, width: number): string {
  return BigInt('0x' + buf.toString('hex'))
    .toString(36)
    .padStart(width, '0');
}

export function rootDigest(rootCertPem: string): string {
  return base36(createHash('sha256').update(rootCertPem).digest(), 50);
}

export function generateJoinToken(rootCertPem: string): string {
  return `${PREFIX}-${VERSION}-${rootDigest(rootCertPem)}-${base36(randomBytes(16), 25)}`;
}

export interface ParsedToken {
  digest: string;
  secret: string;
}

/** Docker's wording for a token that is not even shaped right. */
export class InvalidTokenError extends Error {
  constructor() {
    super('invalid join token');
  }
}

export function parseJoinToken(token: string): ParsedToken {
  const parts = token.split('-');
  if (
    parts.length !== 4 ||
    parts[0] !== PREFIX ||
    parts[1] !== VERSION ||
    parts[2].length !== 50 ||
    parts[3].length !== 25
  ) {
    throw new InvalidTokenError();
  }
  if (!/^[0-9a-z]+$/.test(parts[2]) || !/^[0-9a-z]+$/.test(parts[3])) throw new InvalidTokenError();
  return { digest: parts[2], secret: parts[3] };
}

/** Constant-time comparison of a presented token with an issued one. */
export function tokensEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
