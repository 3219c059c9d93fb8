import type { Prng } from '../../test/helpers/prng.js';
import type { RawRequest } from './http.js';

/** Requests that are wrong at the HTTP level: methods, targets, header sizes, framing. */
export function oddRequest(p: Prng): { req: RawRequest; route: string; mutation: string } {
  const paths = ['/info', '/containers/json', '/v1.41/services', '/networks/create', '/nodes', '/_ping', '/nope'];
  const kind = p.pick([
    'unknown-method',
    'long-url',
    'huge-url',
    'long-header',
    'huge-header',
    'many-headers',
    'bad-version',
    'bad-escape',
    'odd-target',
    'bad-framing',
    'http10',
    'garbage',
    'unknown-path',
  ]);
  const path = p.pick(paths);
  const r = (req: RawRequest, mutation: string) => ({ req, route: `HTTP ${kind}`, mutation });
  switch (kind) {
    case 'unknown-method': {
      const m = p.pick([
        'FOO',
        'PATCH',
        'PROPFIND',
        'OPTIONS',
        'TRACE',
        'CONNECT',
        'get',
        'G3T',
        'DELETE',
        'PUT',
        'LOCK',
      ]);
      return r({ method: m, target: m === 'CONNECT' ? 'docker:2375' : path }, `${m} ${path}`);
    }
    case 'long-url':
      return r(
        {
          method: 'GET',
          target: p.chance(0.5)
            ? `/containers/json?x=${'a'.repeat(16 * 1024)}`
            : `/containers/${'a'.repeat(16 * 1024)}/json`,
        },
        '16 KiB URL',
      );
    case 'huge-url':
      return r({ method: 'GET', target: `/info?x=${'a'.repeat(100 * 1024)}` }, '100 KiB URL');
    case 'long-header':
      return r({ method: 'GET', target: path, headers: [['X-Long', 'h'.repeat(16 * 1024)]] }, '16 KiB header');
    case 'huge-header':
      return r(
        { method: 'GET', target: path, headers: [['X-Registry-Auth', 'h'.repeat(200 * 1024)]] },
        '200 KiB header',
      );
    case 'many-headers':
      return r(
        {
          method: 'GET',
          target: path,
          headers: Array.from({ length: 3000 }, (_, i) => [`X-H${i}`, 'v'] as [string, string]),
        },
        '3000 headers',
      );
    case 'bad-version': {
      const v = p.pick(['/v0.1', '/v9.99', '/v1.x', '/vabc', '/v1.41.2', '/v1', '/v999999999999999999.1']);
      return r({ method: 'GET', target: `${v}/info` }, `${v}/info`);
    }
    case 'bad-escape': {
      const t = p.pick([
        '/containers/%zz/json',
        '/images/%E0%A4%A/json',
        '/networks/%',
        '/volumes/%00',
        '/services/%2F..%2F/update',
      ]);
      return r({ method: p.pick(['GET', 'POST']), target: t }, t);
    }
    case 'odd-target': {
      const t = p.pick([
        '*',
        'http://[::1/info',
        'http://docker/info',
        '//info',
        'info',
        '/info#frag',
        '/./info',
        '/../../info',
        '/info?%',
      ]);
      return r({ method: 'GET', target: t }, `target ${t}`);
    }
    case 'bad-framing': {
      const v = p.pick([
        'bad-content-length',
        'cl-and-te',
        'bad-chunk',
        'negative-cl',
        'header-no-colon',
        'nul-in-header',
      ]);
      const raw: Record<string, string> = {
        'bad-content-length':
          'POST /volumes/create HTTP/1.1\r\nHost: d\r\nContent-Length: abc\r\nConnection: close\r\n\r\n{}',
        'cl-and-te':
          'POST /volumes/create HTTP/1.1\r\nHost: d\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n2\r\n{}\r\n0\r\n\r\n',
        'bad-chunk':
          'POST /volumes/create HTTP/1.1\r\nHost: d\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\nConnection: close\r\n\r\nzz\r\n{}\r\n0\r\n\r\n',
        'negative-cl': 'POST /volumes/create HTTP/1.1\r\nHost: d\r\nContent-Length: -5\r\nConnection: close\r\n\r\n',
        'header-no-colon': 'GET /info HTTP/1.1\r\nHost: d\r\nNoColonHere\r\nConnection: close\r\n\r\n',
        'nul-in-header': 'GET /info HTTP/1.1\r\nHost: d\r\nX-A: a\u0000b\r\nConnection: close\r\n\r\n',
      };
      return r({ method: '', target: '', raw: Buffer.from(raw[v], 'latin1') }, v);
    }
    case 'http10':
      return r({ method: '', target: '', raw: Buffer.from(`GET ${path} HTTP/1.0\r\n\r\n`) }, `HTTP/1.0 GET ${path}`);
    // Not "\r\n\r\n" alone: a server ignores empty lines before a request line (RFC 9112 2.2) and waits for one.
    case 'garbage':
      return r(
        {
          method: '',
          target: '',
          raw: Buffer.from(
            p.pick([
              'HELLO\r\n\r\n',
              'GET\r\n\r\n',
              '\u0016\u0003\u0001\u0000\u00a5\u0001\u0000\u0000\u00a1\u0003\u0003',
              'GET / HTTP/9.9\r\n\r\n',
            ]),
            'latin1',
          ),
        },
        'garbage request line',
      );
    default: {
      const t = p.pick(['/nope', '/v1.41/containers', '/containers/json/extra', '/swarm/nope', '/images/', '/']);
      return r({ method: p.pick(['GET', 'POST', 'DELETE']), target: t }, `unknown path ${t}`);
    }
  }
}
