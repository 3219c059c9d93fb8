import fs from 'node:fs';
import path from 'node:path';
import { run } from '../../src/util/run.js';

/** What docker-py's suite needs (its README): the client release the suite belongs to, and pytest. */
export const PYTHON_PACKAGES = ['docker==7.2.0', 'pytest', 'pytest-timeout', 'paramiko', 'websocket-client'];

const CHECK =
  "import docker, pytest, pytest_timeout, paramiko, websocket; assert docker.__version__ == '7.2.0', docker.__version__";

/**
 * A virtualenv with PYTHON_PACKAGES, kept between runs (SHOAL_COMPAT_VENV, default under
 * /var/cache/shoal). A marker written last says it is complete, so an interrupted install is
 * redone rather than trusted. Returns its python.
 */
export async function ensureVenv(): Promise<string> {
  const dir = path.resolve(process.env.SHOAL_COMPAT_VENV ?? '/var/cache/shoal/compat-venv-docker-7.2.0');
  const python = path.join(dir, 'bin/python');
  const marker = path.join(dir, '.shoal-complete');
  if (fs.existsSync(marker) && (await run(python, ['-c', CHECK], { allowFail: true })).code === 0) return python;
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(path.dirname(dir), { recursive: true });
  console.log(`making a virtualenv for docker-py in ${dir}: pip install ${PYTHON_PACKAGES.join(' ')}`);
  await run('python3', ['-m', 'venv', dir]);
  await run(path.join(dir, 'bin/pip'), ['install', '-q', ...PYTHON_PACKAGES]);
  await run(python, ['-c', CHECK]);
  fs.writeFileSync(marker, PYTHON_PACKAGES.join('\n') + '\n');
  return python;
}
