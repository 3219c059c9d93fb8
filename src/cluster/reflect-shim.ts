/**
 * @peculiar/x509 pulls in tsyringe, which insists on a Reflect metadata API at load time.
 * It only stores and reads metadata for its own registrations, so a WeakMap suffices and
 * spares the reflect-metadata dependency. Import this before '@peculiar/x509'.
 */
type Meta = Map<unknown, unknown>;
const store = new WeakMap<object, Map<string | symbol | undefined, Meta>>();
const R = Reflect as unknown as Record<string, unknown>;

function table(target: object, prop: string | symbol | undefined, create: boolean): Meta | undefined {
  let byProp = store.get(target);
  if (!byProp && create) store.set(target, (byProp = new Map()));
  let m = byProp?.get(prop);
  if (!m && create && byProp) byProp.set(prop, (m = new Map()));
  return m;
}

if (typeof R.getMetadata !== 'function') {
  R.defineMetadata = (key: unknown, value: unknown, target: object, prop?: string | symbol) =>
    void table(target, prop, true)!.set(key, value);
  R.getOwnMetadata = (key: unknown, target: object, prop?: string | symbol) => table(target, prop, false)?.get(key);
  R.getMetadata = (key: unknown, target: object, prop?: string | symbol): unknown => {
    for (let t: object | null = target; t; t = Object.getPrototypeOf(t)) {
      const v = table(t, prop, false)?.get(key);
      if (v !== undefined) return v;
    }
    return undefined;
  };
}
export {};
