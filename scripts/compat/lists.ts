/**
 * Which of docker-py's integration tests `npm run compat` leaves out or expects to fail, each
 * with its reason. Node ids are relative to the suite folder.
 */

/** The suite's files that the compat run covers (tests/integration/<name>_test.py). */
export const SUITE_FILES = [
  'api_swarm', 'api_service', 'api_network', 'api_secret', 'api_config', 'api_volume',
  'api_container', 'api_exec', 'api_image', 'api_client',
  'models_containers', 'models_images', 'models_networks', 'models_nodes', 'models_resources',
  'models_services', 'models_swarm', 'models_volumes',
] as const;

const P = 'tests/integration/';

/** Tests not run: they need Docker Hub (the run has no internet) or websockets over a unix socket. */
export const DESELECTED: Record<string, string> = {
};

/**
 * Tests that run but are expected to fail: only ones that also fail on dockerd 20.10 (Debian's
 * docker.io, the reference engine of issue 13) or that are out of shoal's scope.
 */
export const EXPECTED_FAILURES: Record<string, string> = {
};

export const nodeId = (file: string, rest: string): string => `${P}${file}_test.py::${rest}`;
