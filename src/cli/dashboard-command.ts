import type { Command } from 'commander';
import { CertCommandError, dockerTarget, request } from './cert-command.js';

/** `shoal dashboard token [--rotate]`: the swarm's dashboard login token, asked of the manager DOCKER_HOST points at (admin only). */
export function dashboardCommands(program: Command): void {
  const dashboard = program
    .command('dashboard')
    .description('the live dashboard managers serve with shoald --dashboard-addr');
  dashboard
    .command('token')
    .description(
      "print the swarm's dashboard login token (the same on every manager; DOCKER_HOST at one); --rotate makes a new one (old logins end on every manager)",
    )
    .option('--rotate', 'replace the token')
    .action(async (o: { rotate?: boolean }) => {
      const target = dockerTarget(process.env);
      const r = o.rotate
        ? await request(target, 'POST', '/shoal/dashboard/token/rotate')
        : await request(target, 'GET', '/shoal/dashboard/token');
      if (r.status !== 200)
        throw new CertCommandError(`Error response from daemon: ${String(r.json.message ?? r.status)}`);
      console.log(String(r.json.Token));
    });
}
