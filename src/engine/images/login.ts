/** `docker login`: the daemon only checks the credentials against the registry; the CLI stores them. */
import { ApiError } from '../../util/errors.js';
import type { ImageStore } from './store.js';
import { isInsecureRegistry, loginDomain, RegistryClient, RegistryError, type AuthConfig } from './registry.js';

export async function checkLogin(
  store: ImageStore,
  auth: AuthConfig,
): Promise<{ Status: string; IdentityToken: string }> {
  const domain = loginDomain(auth.serveraddress);
  const insecure = isInsecureRegistry(domain, store.config.insecureRegistries);
  const client = new RegistryClient({ domain, path: '' }, { insecure, auth, actions: 'pull' });
  try {
    await client.checkLogin();
  } catch (e) {
    if (e instanceof RegistryError && (e.status === 401 || e.status === 403)) throw new ApiError(401, e.message);
    throw new ApiError(500, (e as Error).message);
  }
  return { Status: 'Login Succeeded', IdentityToken: '' };
}
