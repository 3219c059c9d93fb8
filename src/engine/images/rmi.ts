import { conflict, noSuchImage } from '../../util/errors.js';
import { shortId } from './blobs.js';
import type { DeleteResponseItem, Image, ImageUser } from './image.js';
import { familiar, familiarString, isSha256Digest, parseReference, repoName, withDefaultTag } from './reference.js';

/** What `docker rmi` does to the store. */
export interface RemovalOps {
  find(ref: string): { image: Image; ref?: string } | undefined;
  refsOf(id: string): string[];
  /** Drops one reference; answers whether it existed. */
  untag(full: string): boolean;
  /** Who uses an image; a bare container ID counts as a running container. */
  userOf(id: string): ImageUser | undefined;
  /** Deleted for users, kept for the stopped container that uses it. */
  orphan(img: Image): DeleteResponseItem[];
  deleteImage(img: Image): DeleteResponseItem[];
  collectOrphans(): void;
}

/**
 * `docker rmi`, with dockerd's rules: a name untags (refused while a container uses the image
 * through its only name, unless forced) and deletes the image once nothing names it; an ID
 * deletes the image (refused while other repositories name it or a container uses it).
 */
export function removeImage(store: RemovalOps, ref: string, force: boolean): DeleteResponseItem[] {
  store.collectOrphans();
  const found = store.find(ref);
  if (!found) throw noSuchImage(missingName(ref));
  const img = found.image;
  const out: DeleteResponseItem[] = [];
  let refs = store.refsOf(img.id);
  let quiet = false;
  if (found.ref && !isIdPrefixOf(ref, img.id)) {
    if (!force && isSingleReference(refs)) {
      const user = store.userOf(img.id);
      if (user)
        throw conflict(
          `conflict: unable to remove repository reference "${ref}" (must force) - container ${user.id.slice(0, 12)} is using its referenced image ${shortId(img.id)}`,
        );
    }
    store.untag(found.ref);
    out.push({ Untagged: familiar(found.ref) });
    refs = store.refsOf(img.id);
    const gone = parseReference(found.ref);
    // A tag gone and only digests of that repository left: they go too.
    if (
      !gone.digest &&
      !refs.some((r) => !parseReference(r).digest && repoName(parseReference(r)) === repoName(gone))
    ) {
      for (const r of refs.filter((r) => repoName(parseReference(r)) === repoName(gone))) {
        store.untag(r);
        out.push({ Untagged: familiar(r) });
      }
      refs = store.refsOf(img.id);
    }
    if (refs.length > 0) return out;
    quiet = true;
  } else if (isSingleReference(refs)) {
    const c = deleteConflict(store, img, { stopped: !force, references: false });
    if (c) throw c.error;
    for (const r of refs) {
      store.untag(r);
      out.push({ Untagged: familiar(r) });
    }
  }
  const c = deleteConflict(store, img, { stopped: !force, references: !force });
  if (c) {
    // After an untag the image quietly stays for the container that uses it.
    if (quiet && c.used) return out;
    throw c.error;
  }
  for (const r of store.refsOf(img.id)) {
    store.untag(r);
    out.push({ Untagged: familiar(r) });
  }
  // Forced under a stopped container: deleted for users, kept for that container.
  if (store.userOf(img.id)) return out.concat(store.orphan(img));
  return out.concat(store.deleteImage(img));
}

/** What stops an image from being deleted: a running container always; names and stopped containers unless forced. */
function deleteConflict(
  store: RemovalOps,
  img: Image,
  soft: { stopped: boolean; references: boolean },
): { error: Error; used: boolean } | undefined {
  const user = store.userOf(img.id);
  const say = (forced: string, why: string) =>
    conflict(`conflict: unable to delete ${shortId(img.id)} (${forced}) - ${why}`);
  if (user?.running)
    return {
      error: say('cannot be forced', `image is being used by running container ${user.id.slice(0, 12)}`),
      used: true,
    };
  if (soft.references && store.refsOf(img.id).length > 0)
    return { error: say('must be forced', 'image is referenced in multiple repositories'), used: false };
  if (soft.stopped && user)
    return {
      error: say('must be forced', `image is being used by stopped container ${user.id.slice(0, 12)}`),
      used: true,
    };
  return undefined;
}

/** dockerd's isSingleReference: all references in one repository, at most one of them a tag. */
function isSingleReference(refs: string[]): boolean {
  if (refs.length <= 1) return refs.length === 1;
  const parsed = refs.map((r) => parseReference(r));
  const tags = parsed.filter((r) => !r.digest);
  if (tags.length > 1) return false;
  const digestRepos = new Set(parsed.filter((r) => r.digest).map(repoName));
  const single = tags[0] ?? parsed[0];
  return digestRepos.size === 1 && digestRepos.has(repoName(single));
}

/** How dockerd names what it did not find: `nosuch:latest`, `sha256:…` as given. */
export function missingName(ref: string): string {
  if (isSha256Digest(ref) || /^[a-f0-9]{64}$/.test(ref)) return ref;
  return familiarString(withDefaultTag(parseReference(ref)));
}

const isIdPrefix = (s: string) => /^(sha256:)?[a-f0-9]{1,64}$/.test(s);
const isIdPrefixOf = (ref: string, id: string) =>
  isIdPrefix(ref) && id.startsWith(ref.startsWith('sha256:') ? ref : `sha256:${ref}`);
