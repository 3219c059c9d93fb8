/**
 * An image reference in its full form, as nodes report their images (`docker.io/library/x:latest`,
 * `host:5000/x@sha256:…`): enough of the distribution reference grammar for the managers to
 * match a service's image against a node's report without the engine's parser.
 */
export interface ImageName {
  /** `domain/path` */
  name: string;
  tag?: string;
  digest?: string;
}

export function fullImageName(image: string): ImageName {
  let rest = image;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
  }
  const slash = rest.indexOf('/');
  const first = slash < 0 ? '' : rest.slice(0, slash);
  const hasDomain = first !== '' && (first.includes('.') || first.includes(':') || first === 'localhost');
  let name = hasDomain ? rest : `docker.io/${rest}`;
  if (!hasDomain && slash < 0) name = `docker.io/library/${rest}`;
  return { name, ...(tag !== undefined || !digest ? { tag: tag ?? 'latest' } : {}), ...(digest ? { digest } : {}) };
}

/** Whether `image` (a service's, as given) names the image `imageId` that a node holds under `refs`. */
export function namesImage(image: string, imageId: string, refs: string[]): boolean {
  const want = fullImageName(image);
  if (want.digest) return want.digest === imageId || refs.some((r) => r.endsWith(`@${want.digest}`));
  return refs.includes(`${want.name}:${want.tag}`);
}
