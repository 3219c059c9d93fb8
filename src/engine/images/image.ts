import type { ImageConfigBlob } from './manifest.js';

/** What the store keeps about one image besides its config blob. */
export interface ImageRecord {
  id: string;
  /** When this node got it (pull, load, import). */
  loadedAt: string;
  lastTagTime?: string;
  /**
   * Deleted by `docker rmi -f` while a stopped container still uses it: gone for users, but
   * kept (by full ID) with its layers so that container can start again. Collected later.
   */
  orphaned?: boolean;
  /** The image it was committed from (dockerd keeps this locally, not in the config blob). */
  parent?: string;
  /**
   * Pulled with registry credentials the registry asked for: swarm peers get its blobs only
   * for a task of theirs that was given credentials too (peer-server.ts). An anonymous pull
   * of the same image clears it.
   */
  private?: boolean;
}

export interface Image {
  id: string;
  record: ImageRecord;
  config: ImageConfigBlob;
  /** Size of the uncompressed layers. */
  size: number;
}

export type DeleteResponseItem = { Untagged: string } | { Deleted: string };

/** A container that uses an image. */
export interface ImageUser {
  id: string;
  running: boolean;
}

/**
 * Tells whether a container uses an image: the container, or undefined. Set by the container
 * manager. A bare container ID is read as a running container (never deleted under it).
 */
export type InUseCheck = (imageId: string) => string | ImageUser | undefined;
