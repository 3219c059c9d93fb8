import http from 'node:http';

/** What a raw Engine API call answers: the status and the JSON body (`{}` when empty). */
export interface ApiAnswer<B> {
  status: number;
  body: B;
}

/**
 * One Engine API call over a daemon's unix socket with a JSON body, for what the docker CLI
 * checks (or shapes) before it asks. `path` is the whole path, version prefix included.
 */
export function apiJson<B = { message?: string } & Record<string, unknown>>(
  socket: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<ApiAnswer<B>> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { socketPath: socket, method, path, headers: { 'Content-Type': 'application/json' } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString();
          try {
            resolve({ status: res.statusCode ?? 0, body: (text ? JSON.parse(text) : {}) as B });
          } catch (e) {
            reject(e instanceof Error ? e : new Error(String(e)));
          }
        });
      },
    );
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}
