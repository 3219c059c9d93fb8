/** `docker system df`: space used by images (shared layers counted once), containers' writable layers and volumes. */
import type { Engine } from './engine.js';
import { dirSize } from './volumes/store.js';

export function diskUsage(engine: Engine, types?: Set<string>) {
  const want = (t: string) => !types || types.size === 0 || types.has(t);
  const images = engine.images;
  const containers = engine.containers;
  const all = containers.all();
  const body: Record<string, unknown> = {};
  if (want('image')) {
    // How many images use each layer: a layer in more than one is shared.
    const users = new Map<string, number>();
    for (const img of images.all())
      for (const d of new Set(img.config.rootfs.diff_ids)) users.set(d, (users.get(d) ?? 0) + 1);
    const layerSize = (d: string) => (images.layers.has(d) ? images.layers.meta(d).size : 0);
    body.LayersSize = [...users.keys()].reduce((n, d) => n + layerSize(d), 0);
    body.Images = images.list(new Map()).map((s) => {
      const img = images.get(s.Id as string)!;
      const shared = [...new Set(img.config.rootfs.diff_ids)]
        .filter((d) => (users.get(d) ?? 0) > 1)
        .reduce((n, d) => n + layerSize(d), 0);
      return { ...s, SharedSize: shared, Containers: all.filter((r) => r.imageId === img.id).length };
    });
  }
  if (want('container')) {
    body.Containers = containers.list({ all: true }).map((s) => {
      const rec = containers.get(s.Id);
      const rw = dirSize(containers.paths(rec.id).upper);
      return { ...s, SizeRw: rw, SizeRootFs: rw + (images.get(rec.imageId)?.size ?? 0) };
    });
  }
  if (want('volume')) {
    body.Volumes = engine.volumes.list().map((v) => ({
      ...v,
      UsageData: { Size: dirSize(v.Mountpoint), RefCount: engine.volumes.users(v.Name).length },
    }));
  }
  // No builder here: its cache is always empty.
  if (want('build-cache')) body.BuildCache = [];
  return body;
}
