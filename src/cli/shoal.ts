import { spawn } from 'node:child_process';
import { Command } from 'commander';
import { Lab, LabError } from '../lab/lab.js';
import { netnsPath } from '../lab/network.js';
import { machinePaths, resolveSettings, type LabSettings } from '../lab/settings.js';
import { formatTable } from '../lab/table.js';
import { CertCommandError, certCommands } from './cert-command.js';
import { dashboardCommands } from './dashboard-command.js';

const collect = (v: string, prev: string[]) => [...prev, v];

const program = new Command('shoal').description('shoal: tools around the shoald daemon').enablePositionalOptions();

const machine = program
  .command('machine')
  .description('a lab of machines made of network namespaces, each running its own shoald (like docker-machine)')
  .option('--lab-dir <dir>', 'where the lab keeps its state (env SHOAL_LAB_DIR)')
  .option('--prefix <prefix>', 'starts the name of every namespace the lab makes (env SHOAL_LAB_PREFIX)')
  .option('--subnet <cidr>', 'the lab network (env SHOAL_LAB_SUBNET)')
  // Options after `ssh NAME` belong to the command run in the machine.
  .enablePositionalOptions();

/** The lab the `machine` options and environment point at. */
function openLab(): Lab {
  const o = machine.opts<{ labDir?: string; prefix?: string; subnet?: string }>();
  const flags: Partial<LabSettings> = {};
  if (o.labDir) flags.labDir = o.labDir;
  if (o.prefix) flags.prefix = o.prefix;
  if (o.subnet) flags.subnet = o.subnet;
  const settings = resolveSettings(flags);
  return Lab.open(settings, {
    prefix: !!(o.prefix ?? process.env.SHOAL_LAB_PREFIX),
    subnet: !!(o.subnet ?? process.env.SHOAL_LAB_SUBNET),
  });
}

machine
  .command('create')
  .description('create a machine and start its daemon')
  .argument('<name>')
  .option('--engine-label <k=v>', 'engine label of its daemon (repeatable)', collect, [])
  .option(
    '--engine-insecure-registry <host:port>',
    'a registry its daemon reaches over plain HTTP, besides the lab registry (repeatable)',
    collect,
    [],
  )
  .option(
    '--engine-opt <flag=value>',
    'a shoald flag for its daemon, e.g. dashboard-addr=0.0.0.0:8080 or metrics-addr=0.0.0.0:9323 (repeatable)',
    collect,
    [],
  )
  .action(async (name: string, o: { engineLabel: string[]; engineInsecureRegistry: string[]; engineOpt: string[] }) => {
    const lab = openLab();
    console.log(`Creating machine "${name}"...`);
    const rec = await lab.create(name, {
      engineLabels: o.engineLabel,
      insecureRegistries: o.engineInsecureRegistry,
      engineOpts: o.engineOpt,
    });
    console.log(`Machine "${name}" is up at ${rec.address}, daemon ${lab.url(name)}`);
    console.log(`To point your Docker client at it, run: eval $(shoal machine env ${name})`);
  });

machine
  .command('ls')
  .description('list machines')
  .option('-q, --quiet', 'only names')
  .action(async (o: { quiet?: boolean }) => {
    const lab = openLab();
    const machines = await lab.list();
    if (o.quiet) {
      for (const m of machines) console.log(m.name);
      return;
    }
    const active = process.env.DOCKER_HOST;
    process.stdout.write(
      formatTable(
        ['NAME', 'ACTIVE', 'STATE', 'ADDRESS', 'NETWORK', 'URL'],
        machines.map((m) => [
          m.name,
          m.url === active ? '*' : '-',
          m.state,
          m.address,
          m.disconnected ? 'disconnected' : 'connected',
          m.url,
        ]),
      ),
    );
  });

machine
  .command('env')
  .description('print the commands that point the docker CLI at a machine: eval $(shoal machine env NAME)')
  .argument('<name>')
  .option('-u, --unset', 'print the commands that undo it')
  .option('--tls', "the machine's TCP address with TLS (tcp://<ip>:2376), for a client that reaches the lab network")
  .action((name: string, o: { unset?: boolean; tls?: boolean }) => {
    const lab = openLab();
    if (o.unset) {
      console.log('unset DOCKER_TLS_VERIFY');
      console.log('unset DOCKER_HOST');
      console.log('unset DOCKER_CERT_PATH');
      console.log('unset DOCKER_MACHINE_NAME');
      console.log('# Run this command to configure your shell:');
      console.log('# eval $(shoal machine env -u)');
      return;
    }
    lab.get(name);
    if (o.tls) {
      // docker-machine's lines, word for word.
      console.log('export DOCKER_TLS_VERIFY="1"');
      console.log(`export DOCKER_HOST="${lab.tlsUrl(name)}"`);
      console.log(`export DOCKER_CERT_PATH="${lab.certPath(name)}"`);
    } else {
      console.log(`export DOCKER_HOST="${lab.url(name)}"`);
    }
    console.log(`export DOCKER_MACHINE_NAME="${name}"`);
    console.log('# Run this command to configure your shell:');
    console.log(`# eval $(shoal machine env${o.tls ? ' --tls' : ''} ${name})`);
  });

machine
  .command('ip')
  .description("print a machine's address")
  .argument('<name...>')
  .action((names: string[]) => {
    const lab = openLab();
    for (const n of names) console.log(lab.get(n).address);
  });

machine
  .command('url')
  .description("print a machine's daemon URL (for DOCKER_HOST)")
  .argument('<name>')
  .action((name: string) => {
    const lab = openLab();
    lab.get(name);
    console.log(lab.url(name));
  });

machine
  .command('status')
  .description("print a machine's state: Running, Stopped or Error")
  .argument('<name>')
  .action(async (name: string) => {
    const lab = openLab();
    console.log((await lab.status(lab.get(name))).state);
  });

machine
  .command('active')
  .description('print the machine DOCKER_HOST points at')
  .action(async () => {
    const lab = openLab();
    const active = (await lab.list()).find((m) => m.url === process.env.DOCKER_HOST);
    if (!active) throw new LabError('No active host found');
    console.log(active.name);
  });

machine
  .command('inspect')
  .description('print what the lab knows about a machine, as JSON')
  .argument('<name>')
  .action(async (name: string) => {
    const lab = openLab();
    const st = await lab.status(lab.get(name));
    const p = machinePaths(lab.labDir, name);
    console.log(
      JSON.stringify(
        { ...st, dataRoot: p.dataRoot, execRoot: p.execRoot, log: p.log, registry: lab.registryAddress },
        null,
        4,
      ),
    );
  });

machine
  .command('ssh')
  .description('a shell, or a command, inside a machine, with DOCKER_HOST set to its daemon')
  .argument('<name>')
  .argument('[command...]')
  .passThroughOptions()
  .action(async (name: string, command: string[]) => {
    const lab = openLab();
    const rec = lab.get(name);
    const st = await lab.status(rec);
    if (st.state !== 'Running') throw new LabError(`Host "${name}" is not running`);
    // With options passed through, a `--` before the command arrives as an argument.
    const args = command[0] === '--' ? command.slice(1) : command;
    const cmd = args.length > 0 ? args : [process.env.SHELL || '/bin/sh'];
    const child = spawn('nsenter', [`--net=${netnsPath(rec.ns)}`, '--', ...cmd], {
      stdio: 'inherit',
      env: { ...process.env, DOCKER_HOST: st.url },
    });
    const code = await new Promise<number>((resolve, reject) => {
      child.on('error', reject);
      child.on('exit', (c, sig) => resolve(c ?? (sig ? 128 : 1)));
    });
    process.exitCode = code;
  });

machine
  .command('stop')
  .alias('kill')
  .description('stop machines: daemon and containers gone, data kept (a power cut)')
  .argument('<name...>')
  .action(async (names: string[]) => {
    const lab = openLab();
    for (const n of names) {
      console.log(`Stopping "${n}"...`);
      if (!(await lab.stop(n))) console.log(`Machine "${n}" is already stopped.`);
      else console.log(`Machine "${n}" was stopped.`);
    }
  });

machine
  .command('start')
  .description('boot stopped machines again from their kept state')
  .argument('<name...>')
  .action(async (names: string[]) => {
    const lab = openLab();
    for (const n of names) {
      console.log(`Starting "${n}"...`);
      if (!(await lab.start(n))) console.log(`Machine "${n}" is already running.`);
      else console.log(`Machine "${n}" was started.`);
    }
  });

machine
  .command('restart')
  .description('stop and start machines again')
  .argument('<name...>')
  .action(async (names: string[]) => {
    const lab = openLab();
    for (const n of names) {
      console.log(`Restarting "${n}"...`);
      await lab.stop(n);
      await lab.start(n);
    }
  });

machine
  .command('rm')
  .description('remove machines for good: daemon, containers, mounts, namespace and data')
  .argument('<name...>')
  .option('-f, --force', 'remove even if some clean-up fails or the machine has no record')
  .option('-y', 'assume yes (there is no prompt; accepted for docker-machine compatibility)')
  .action(async (names: string[], o: { force?: boolean }) => {
    const lab = openLab();
    for (const n of names) {
      await lab.rm(n, !!o.force);
      console.log(`Successfully removed ${n}`);
    }
  });

machine
  .command('disconnect')
  .description('cut a machine off the lab network (a partition); it keeps running')
  .argument('<name...>')
  .action(async (names: string[]) => {
    const lab = openLab();
    for (const n of names) await lab.setConnected(n, false);
  });

machine
  .command('connect')
  .description('join a disconnected machine to the lab network again')
  .argument('<name...>')
  .action(async (names: string[]) => {
    const lab = openLab();
    for (const n of names) await lab.setConnected(n, true);
  });

machine
  .command('regenerate-certs')
  .description('make new TLS certificates for machines (server and client, same lab CA); their daemons switch at once')
  .argument('<name...>')
  .option('-f, --force', 'no prompt (there is none; accepted for docker-machine compatibility)')
  .action(async (names: string[]) => {
    const lab = openLab();
    for (const n of names) {
      console.log(`Regenerating TLS certificates for ${n}`);
      await lab.regenerateCerts(n);
    }
  });

machine
  .command('registry')
  .description(
    'make sure the lab registry runs (reachable from every machine, trusted by every daemon) and print its HOST:PORT',
  )
  .action(async () => {
    console.log(await openLab().ensureRegistry());
  });

machine
  .command('prune')
  .description('remove everything any lab with this directory and prefix made, even after a crash')
  .action(async () => {
    const lab = openLab();
    const r = await lab.prune();
    console.log(
      `Removed ${r.namespaces.length} namespaces, ${r.processes} processes, ${r.mounts} mounts; ${lab.labDir} is gone.`,
    );
  });

certCommands(program);
dashboardCommands(program);

try {
  await program.parseAsync();
} catch (e) {
  // User mistakes print their message alone; anything else keeps its detail for the bug report.
  console.error(
    e instanceof LabError || e instanceof CertCommandError ? (e as Error).message : `Error: ${(e as Error).message}`,
  );
  process.exitCode = 1;
}
