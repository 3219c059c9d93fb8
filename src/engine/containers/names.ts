import { badRequest } from '../../util/errors.js';

/** Docker's rule for container names; returns the name with its leading slash. */
export function validName(name: string): string {
  const bare = name.startsWith('/') ? name.slice(1) : name;
  if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/.test(bare))
    throw badRequest(`Invalid container name (${bare}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`);
  return '/' + bare;
}
