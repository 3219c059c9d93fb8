import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { run } from '../../src/util/run.js';
import { createSwarmLab, type SwarmLab } from '../helpers/swarm-lab.js';
import { waitFor as poll } from '../helpers/process.js';

// Needs root: a two-machine lab (namespaces, shoald, etcd, runc, the lab registry) driven by the real docker CLI's `stack` commands.

const waitFor = <T>(what: string, fn: () => Promise<T | undefined | false>, ms = 90_000) => poll(what, fn, ms, 500);
const hostnameOf = (page: string) => /id="hostname">([^<]*)</.exec(page)?.[1];

/** The compose file: `web` publishes 8080 → 8000 with `replicas`, `agent` runs on every node; both on the stack's `back` overlay. */
function composeFile(image: string, webImage: string, replicas: number, greeting: string): string {
  return `version: "3.8"
services:
  web:
    image: ${webImage}
    environment:
      GREETING: ${greeting}
    ports:
      - target: 8000
        published: 8080
        protocol: tcp
        mode: ingress
    networks: [back]
    secrets: [token]
    configs:
      - source: page
        target: /etc/page.txt
    labels:
      role: front
    healthcheck:
      test: ["CMD", "true"]
      interval: 5s
    deploy:
      replicas: ${replicas}
      labels:
        tier: web
      resources:
        limits:
          memory: 64M
        reservations:
          memory: 8M
      restart_policy:
        condition: on-failure
        delay: 2s
      update_config:
        parallelism: 2
        delay: 1s
        order: stop-first
      rollback_config:
        parallelism: 1
  agent:
    image: ${image}
    command: ["/bin/httpd", "-f", "-p", "8000", "-h", "/www"]
    networks: [back]
    volumes:
      - agentdata:/data
    deploy:
      mode: global
      placement:
        constraints: [node.platform.os == linux]
networks:
  back:
    driver: overlay
    labels:
      purpose: stack-test
volumes:
  agentdata:
secrets:
  token:
    file: ./token.txt
configs:
  page:
    file: ./page.txt
`;
}

describe('docker stack deploy / ls / services / ps / rm on a two-machine swarm', () => {
  let swarm: SwarmLab;
  let dir: string;
  let compose: string;
  const d = (m: string, args: string[]) => swarm.d(m, args);
  const ok = async (m: string, args: string[]) => {
    const r = await d(m, args);
    assert.equal(r.code, 0, `docker ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  /** curl from the lab's hub namespace (outside every machine). */
  const fromHub = (url: string) =>
    run('ip', ['netns', 'exec', `${swarm.lab.prefix}-hub`, 'curl', '-s', '-m', '3', url], { allowFail: true });
  const taskContainers = async (m: string, svc: string) =>
    (await d(m, ['ps', '-q', '--no-trunc', '--filter', `label=com.docker.swarm.service.name=${svc}`])).stdout
      .trim()
      .split('\n')
      .filter(Boolean);

  before(async () => {
    swarm = await createSwarmLab({ managers: ['m1'], workers: ['m2'], micro: true });
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-stack-'));
    compose = path.join(dir, 'compose.yml');
    fs.writeFileSync(path.join(dir, 'token.txt'), 's3cret\n');
    fs.writeFileSync(path.join(dir, 'page.txt'), 'a page\n');
  });

  after(async () => {
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
    await swarm?.cleanup();
  });

  it('stack deploy creates the network and both services, labelled with the stack namespace', async () => {
    fs.writeFileSync(compose, composeFile(swarm.image, swarm.image, 2, 'hello'));
    const out = await ok('m1', ['stack', 'deploy', '--detach=true', '-c', compose, 'shop']);
    assert.match(out, /Creating network shop_back/);
    assert.match(out, /Creating secret shop_token/);
    assert.match(out, /Creating config shop_page/);
    assert.match(out, /Creating service shop_web/);
    assert.match(out, /Creating service shop_agent/);

    const net = JSON.parse(await ok('m1', ['network', 'inspect', 'shop_back']))[0];
    assert.equal(net.Driver, 'overlay');
    assert.equal(net.Scope, 'swarm');
    assert.deepEqual(net.Labels, { 'com.docker.stack.namespace': 'shop', purpose: 'stack-test' });

    const web = JSON.parse(await ok('m1', ['service', 'inspect', 'shop_web']))[0];
    assert.equal(web.Spec.Labels['com.docker.stack.namespace'], 'shop');
    assert.equal(web.Spec.Labels.tier, 'web');
    assert.equal(web.Spec.Mode.Replicated.Replicas, 2);
    const c = web.Spec.TaskTemplate.ContainerSpec;
    assert.ok(c.Env.includes('GREETING=hello'), `env ${c.Env}`);
    assert.equal(c.Labels.role, 'front');
    assert.deepEqual(c.Healthcheck.Test, ['CMD', 'true']);
    assert.equal(web.Spec.TaskTemplate.Resources.Limits.MemoryBytes, 64 * 1024 * 1024);
    assert.equal(web.Spec.TaskTemplate.RestartPolicy.Condition, 'on-failure');
    assert.equal(web.Spec.UpdateConfig.Parallelism, 2);
    // The CLI leaves the rollback order and action empty: SwarmKit's zero values show.
    assert.equal(web.Spec.RollbackConfig.Order, 'stop-first');
    assert.equal(web.Spec.RollbackConfig.FailureAction, 'pause');
    assert.deepEqual(web.Endpoint.Ports, [
      { Protocol: 'tcp', TargetPort: 8000, PublishedPort: 8080, PublishMode: 'ingress' },
    ]);
    assert.deepEqual(
      web.Spec.TaskTemplate.Networks.map((n: { Target: string }) => n.Target),
      [net.Id],
    );

    const agent = JSON.parse(await ok('m1', ['service', 'inspect', 'shop_agent']))[0];
    assert.ok(agent.Spec.Mode.Global);
    assert.deepEqual(agent.Spec.TaskTemplate.Placement.Constraints, ['node.platform.os == linux']);
    assert.deepEqual(agent.Spec.TaskTemplate.ContainerSpec.Mounts, [
      {
        Type: 'volume',
        Source: 'shop_agentdata',
        Target: '/data',
        VolumeOptions: { Labels: { 'com.docker.stack.namespace': 'shop' } },
      },
    ]);

    await waitFor(
      'shop_web 2/2 and shop_agent 2/2',
      async () => (await swarm.replicas('shop_web')) === '2/2' && (await swarm.replicas('shop_agent')) === '2/2',
    );
  });

  it('stack ls, stack services and stack ps show the stack as the CLI prints it', async () => {
    assert.equal((await ok('m1', ['stack', 'ls', '--format', '{{.Name}} {{.Services}}'])).trim(), 'shop 2');
    const services = (
      await ok('m1', ['stack', 'services', 'shop', '--format', '{{.Name}} {{.Mode}} {{.Replicas}} {{.Ports}}'])
    )
      .trim()
      .split('\n')
      .sort();
    assert.deepEqual(
      services.map((l) => l.trimEnd()),
      ['shop_agent global 2/2', 'shop_web replicated 2/2 *:8080->8000/tcp'],
    );
    const ps = (
      await ok('m1', ['stack', 'ps', 'shop', '--format', '{{.Name}} {{.Node}} {{.DesiredState}} {{.CurrentState}}'])
    )
      .trim()
      .split('\n');
    assert.equal(ps.length, 4, ps.join('\n'));
    const names = ps.map((l) => l.split(' ')[0]).sort();
    assert.deepEqual(
      names.filter((n) => n.startsWith('shop_web.')),
      ['shop_web.1', 'shop_web.2'],
    );
    assert.equal(names.filter((n) => n.startsWith('shop_agent.')).length, 2);
    for (const l of ps) assert.match(l, / Running Running /);
    const nodes = new Set(ps.filter((l) => l.startsWith('shop_agent.')).map((l) => l.split(' ')[1]));
    assert.deepEqual([...nodes].sort(), ['m1', 'm2']);
  });

  it('the published port answers on both machines; agent reaches web by service name over shop_back', async () => {
    for (const m of swarm.machines) {
      await waitFor(`web page at ${m}:8080`, async () =>
        hostnameOf((await fromHub(`http://${swarm.ip.get(m)}:8080/`)).stdout),
      );
    }
    const agentOnM2 = (await taskContainers('m2', 'shop_agent'))[0];
    assert.ok(agentOnM2, 'an agent task runs on m2');
    const get = (host: string) =>
      d('m2', ['exec', agentOnM2, 'sh', '-c', `printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 ${host} 8000`]);
    await waitFor('web by name from the agent on m2', async () => hostnameOf((await get('web')).stdout));
    // The stack's secret and config reach web's containers.
    const web = (await taskContainers('m1', 'shop_web'))[0] ?? (await taskContainers('m2', 'shop_web'))[0];
    const where = (await taskContainers('m1', 'shop_web')).length ? 'm1' : 'm2';
    assert.equal(await ok(where, ['exec', web, 'cat', '/run/secrets/token', '/etc/page.txt']), 's3cret\na page\n');
  });

  it('a second deploy updates web (image, replicas, environment); agent, unchanged, keeps its tasks', async () => {
    // The same image under a new tag: web's image changes, agent's does not.
    const retagged = swarm.image.replace(/:1\.0\.0$/, ':1.0.1');
    await ok('m1', ['tag', swarm.image, retagged]);
    await ok('m1', ['push', retagged]);
    fs.writeFileSync(compose, composeFile(swarm.image, retagged, 3, 'again'));
    const out = await ok('m1', ['stack', 'deploy', '--detach=true', '-c', compose, 'shop']);
    assert.match(out, /Updating service shop_web/);
    assert.match(out, /Updating service shop_agent/);
    const web = JSON.parse(await ok('m1', ['service', 'inspect', 'shop_web']))[0];
    assert.equal(web.Spec.Mode.Replicated.Replicas, 3);
    assert.match(web.Spec.TaskTemplate.ContainerSpec.Image, /\/micro:1\.0\.1@sha256:/);
    assert.ok(web.Spec.TaskTemplate.ContainerSpec.Env.includes('GREETING=again'));
    assert.ok(web.PreviousSpec, 'an update keeps the previous spec');
    await waitFor('shop_web 3/3 with the new env', async () => {
      if ((await swarm.replicas('shop_web')) !== '3/3') return false;
      const ps = (
        await ok('m1', [
          'stack',
          'ps',
          'shop',
          '--filter',
          'desired-state=running',
          '--format',
          '{{.Name}} {{.Image}} {{.CurrentState}}',
        ])
      )
        .trim()
        .split('\n');
      return ps.filter((l) => /^shop_web\.\d \S+\/micro:1\.0\.1 Running/.test(l)).length === 3;
    });
    assert.equal((await ok('m1', ['stack', 'ls', '--format', '{{.Name}} {{.Services}}'])).trim(), 'shop 2');
    assert.equal(
      (await ok('m1', ['service', 'ps', '-q', 'shop_agent'])).trim().split('\n').length,
      2,
      'no agent task replaced',
    );
  });

  it('deploy --prune without agent in the file removes shop_agent and its tasks', async () => {
    const withoutAgent = composeFile(swarm.image, swarm.image.replace(/:1\.0\.0$/, ':1.0.1'), 3, 'again').replace(
      /\n {2}agent:\n[\s\S]*?(?=\nnetworks:)/,
      '',
    );
    assert.doesNotMatch(withoutAgent, /agent:/);
    fs.writeFileSync(compose, withoutAgent);
    const out = await ok('m1', ['stack', 'deploy', '--detach=true', '--prune', '-c', compose, 'shop']);
    assert.match(out, /Removing service shop_agent/);
    assert.match(out, /Updating service shop_web/);
    assert.equal((await ok('m1', ['stack', 'services', 'shop', '--format', '{{.Name}}'])).trim(), 'shop_web');
    await waitFor('agent containers gone from both machines', async () => {
      for (const m of swarm.machines) if ((await taskContainers(m, 'shop_agent')).length) return false;
      return true;
    });
  });

  it('stack rm removes the services, network, secret and config; stack ls is empty', async () => {
    const out = await ok('m1', ['stack', 'rm', 'shop']);
    assert.match(out, /Removing service shop_web/);
    assert.match(out, /Removing network shop_back/);
    assert.match(out, /Removing secret shop_token/);
    assert.match(out, /Removing config shop_page/);
    assert.equal((await ok('m1', ['secret', 'ls', '-q'])).trim(), '');
    assert.equal((await ok('m1', ['config', 'ls', '-q'])).trim(), '');
    assert.equal((await ok('m1', ['service', 'ls', '-q'])).trim(), '');
    assert.doesNotMatch(await ok('m1', ['network', 'ls', '--format', '{{.Name}}']), /shop_back/);
    assert.equal((await ok('m1', ['stack', 'ls', '--format', '{{.Name}}'])).trim(), '');
    await waitFor('task containers gone from both machines', async () => {
      for (const m of swarm.machines) {
        if ((await taskContainers(m, 'shop_web')).length) return false;
      }
      return true;
    });
    const none = await d('m1', ['stack', 'rm', 'shop']);
    assert.match(none.stdout + none.stderr, /Nothing found in stack: shop/);
  });
});
