import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import type { Browser, Page } from 'puppeteer-core';
import { createMachines, labRegistry, newTestLab, pushLabMicro, SHOAL_JS, type TestLab } from '../helpers/lab.js';
import { waitFor } from '../helpers/process.js';
import { run } from '../../src/util/run.js';
import { REPO_ROOT } from '../helpers/daemon.js';
import { launchInNetns } from '../helpers/browser.js';
import { keepMachineLogs } from '../helpers/swarm-lab.js';
import { machinePaths } from '../../src/lab/settings.js';

// Needs root: a three-machine lab (two managers) whose daemons serve the dashboard (--engine-opt),
// the real docker CLI, and Debian's chromium driven headless by puppeteer-core from the lab's
// network. The login token is the swarm's: every manager prints it and takes it, and a rotation
// on one logs pages out on all.
describe('the dashboard in a browser', () => {
  let lab: TestLab;
  let browser: Browser;
  let page: Page;
  /** A page on the second manager's dashboard. */
  let page2: Page;
  let url = '';
  let url2 = '';
  let token = '';
  const ok = async (m: string, args: string[]) => (await lab.docker(m, args)).stdout;
  /** `shoal dashboard token [--rotate]` against machine `m`'s daemon. */
  const dashToken = async (m: string, rotate = false) => {
    const r = await run(process.execPath, [SHOAL_JS, 'dashboard', 'token', ...(rotate ? ['--rotate'] : [])], {
      env: { ...lab.env, DOCKER_HOST: await lab.dockerHost(m) },
    });
    return r.stdout.trim();
  };
  /** Logs `p` in at its login form with `t` and waits for the live page. */
  const logIn = async (p: Page, t: string) => {
    await p.type('input[name=token]', t);
    await Promise.all([p.waitForNavigation(), p.click('button[type=submit]')]);
    await p.waitForFunction(() => document.querySelector('#conn')?.textContent === 'live', { timeout: 30_000 });
  };
  /** etcdctl in manager `m` against its own etcd member (clients listen on loopback only). */
  const etcdctl = async (m: string, args: string[]) => {
    const c = path.join(machinePaths(lab.labDir, m).dataRoot, 'swarm', 'certificates');
    const r = await lab.ssh(m, [
      'etcdctl',
      '--endpoints=https://127.0.0.1:2379',
      `--cacert=${c}/etcd-ca.crt`,
      `--cert=${c}/etcd-node.crt`,
      `--key=${c}/swarm-node.key`,
      ...args,
    ]);
    assert.equal(r.code, 0, `etcdctl ${args.join(' ')} on ${m}: ${r.stderr}`);
    return r.stdout;
  };
  /**
   * Moves etcd's raft leadership to the other manager's member (what a loaded machine's missed
   * heartbeats do), then waits until both managers answer the swarm API again.
   */
  const moveEtcdLeader = async () => {
    const status = async (m: string) => {
      // Table: | ENDPOINT | ID | VERSION | DB SIZE | IS LEADER | ... (the JSON's ids lose precision in JS numbers).
      const row = (await etcdctl(m, ['endpoint', 'status', '-w', 'table']))
        .split('\n')
        .find((l) => l.includes('127.0.0.1:2379'));
      const cells = row?.split('|').map((x) => x.trim()) ?? [];
      return { id: cells[2], leader: cells[5] === 'true' };
    };
    const [s1, s2] = [await status('m1'), await status('m2')];
    assert.ok(s1.id && s2.id && s1.leader !== s2.leader, `etcd status: ${JSON.stringify([s1, s2])}`);
    const [from, to] = s1.leader ? ['m1', s2.id] : ['m2', s1.id];
    await etcdctl(from, ['move-leader', to!]);
    for (const m of ['m1', 'm2'])
      await waitFor(
        `${m} answers after the etcd leader moved`,
        async () => (await lab.docker(m, ['node', 'ls'], { allowFail: true })).code === 0,
        60_000,
        250,
      );
    console.log(`# etcd leader moved from ${from}`);
  };
  /** What the page shows right now, read from its DOM. */
  const shown = () =>
    page.evaluate(() => ({
      nodes: [...document.querySelectorAll<HTMLElement>('.node')].map((n) => ({
        host: n.dataset.host,
        state: n.dataset.state,
        role: n.dataset.role,
        leader: n.dataset.leader,
      })),
      tasks: [...document.querySelectorAll<HTMLElement>('.node .task')].map((t) => ({
        service: t.dataset.service,
        state: t.dataset.state,
        node: t.closest<HTMLElement>('.node')?.dataset.host,
      })),
      reloads: (window as unknown as { __loads?: number }).__loads,
    }));

  before(async () => {
    lab = newTestLab();
    await createMachines(
      lab,
      ['m1', 'm2', 'm3'],
      ['--engine-opt', 'dashboard-addr=0.0.0.0:8080', '--engine-opt', 'metrics-addr=0.0.0.0:9323'],
    );
    const ip = (await lab.machine(['ip', 'm1'])).stdout.trim();
    await ok('m1', ['swarm', 'init', '--advertise-addr', ip]);
    await ok('m1', ['swarm', 'update', '--dispatcher-heartbeat', '1s']);
    const managerJoin = (await ok('m1', ['swarm', 'join-token', '-q', 'manager'])).trim();
    await ok('m2', ['swarm', 'join', '--token', managerJoin, `${ip}:2377`]);
    const join = (await ok('m1', ['swarm', 'join-token', '-q', 'worker'])).trim();
    await ok('m3', ['swarm', 'join', '--token', join, `${ip}:2377`]);
    await waitFor(
      'three ready nodes',
      async () =>
        (await ok('m1', ['node', 'ls', '--format', '{{.Status}}']))
          .trim()
          .split('\n')
          .filter((s) => s === 'Ready').length === 3,
      60_000,
    );
    const registry = await labRegistry(lab);
    const micro = await pushLabMicro(lab, 'm1', registry);
    await ok('m1', ['service', 'create', '--detach', '--name', 'web', '--replicas', '3', '-p', '8000', micro]);
    token = await dashToken('m1');
    assert.match(token, /^[A-Za-z0-9_-]{43}$/);
    // The lab's daemons run with --tlsverify, so the dashboard is HTTPS with the machine's certificate (signed by the lab CA, which this browser does not know).
    url = `https://${ip}:8080/`;
    url2 = `https://${(await lab.machine(['ip', 'm2'])).stdout.trim()}:8080/`;
    const ns = JSON.parse((await lab.machine(['inspect', 'm1'])).stdout) as { ns: string };
    browser = await launchInNetns(`/var/run/netns/${ns.ns}`);
    page = await browser.newPage();
  });

  after(async () => {
    await browser?.close().catch(() => {});
    if (lab) keepMachineLogs(lab, ['m1', 'm2']);
    await lab?.prune();
  });

  it('refuses without the token: 401 and the login form, no data', async () => {
    const res = await page.goto(url);
    assert.equal(res?.status(), 401);
    assert.ok(await page.$('form[action="/login"] input[name=token]'));
    const api = await page.evaluate(async () => {
      const r = await fetch('/api/snapshot');
      const feed = await fetch('/api/feed');
      const bearer = await fetch('/api/snapshot', { headers: { Authorization: 'Bearer wrong' } });
      return [r.status, feed.status, bearer.status];
    });
    assert.deepEqual(api, [401, 401, 401]);
    // A wrong token at the form is refused too.
    await page.type('input[name=token]', 'not-the-token');
    const [wrong] = await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
    assert.equal(wrong?.status(), 401);
  });

  it('takes the token as Authorization: Bearer', async () => {
    const status = await page.evaluate(
      async (t) => (await fetch('/api/snapshot', { headers: { Authorization: `Bearer ${t}` } })).status,
      token,
    );
    assert.equal(status, 200);
  });

  it('after login shows the 3 nodes and the service tasks on them', async () => {
    await page.goto(url);
    await page.type('input[name=token]', token);
    await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
    await page.evaluate(() => {
      (window as unknown as { __loads: number }).__loads = 1;
    });
    await page.waitForFunction(() => document.querySelector('#conn')?.textContent === 'live', { timeout: 10_000 });
    await waitFor(
      '3 nodes and 3 running web tasks',
      async () => {
        const s = await shown();
        return s.nodes.length === 3 && s.tasks.filter((t) => t.service === 'web' && t.state === 'running').length === 3;
      },
      60_000,
    );
    const s = await shown();
    assert.deepEqual(s.nodes.map((n) => n.host).sort(), ['m1', 'm2', 'm3']);
    assert.ok(s.nodes.every((n) => n.state === 'ready'));
    assert.deepEqual(s.nodes.map((n) => [n.host, n.role, n.leader]).sort(), [
      ['m1', 'manager', 'true'],
      ['m2', 'manager', 'false'],
      ['m3', 'worker', 'false'],
    ]);
    // Where the page puts each task is where docker service ps says it runs.
    const ps = (await ok('m1', ['service', 'ps', 'web', '--filter', 'desired-state=running', '--format', '{{.Node}}']))
      .trim()
      .split('\n')
      .sort();
    assert.deepEqual(
      s.tasks
        .filter((t) => t.service === 'web')
        .map((t) => t.node)
        .sort(),
      ps,
    );
    const row = await page.$eval('tr.svc[data-name=web]', (tr) => ({
      replicas: tr.querySelector('.sr')?.textContent,
      mode: tr.querySelector('.sm')?.textContent,
      ports: tr.querySelector('.sp')?.textContent,
    }));
    assert.equal(row.replicas, '3/3');
    assert.equal(row.mode, 'replicated');
    assert.match(row.ports ?? '', /:8000\/tcp/);
    assert.ok(
      await page.$$eval('#networks tbody tr', (trs) => trs.some((tr) => tr.textContent?.startsWith('ingress'))),
    );
    assert.ok(
      await page.$$eval('#events li', (lis) => lis.some((li) => /service create web/.test(li.textContent ?? ''))),
    );
  });

  it('docker service scale web=7: the page shows 7 tasks without a reload (the delay is printed; bench/dashboard.ts measures it)', async () => {
    await ok('m1', ['service', 'scale', '--detach', 'web=7']);
    // The change's moment: the swarm reports 7 running (docker service ls); the page follows without a reload.
    // No timing assertion here (a loaded CI box): the delay is printed, and bench/dashboard.ts measures it.
    await waitFor(
      '7/7 in service ls',
      async () =>
        (await ok('m1', ['service', 'ls', '--filter', 'name=web', '--format', '{{.Replicas}}'])).trim() === '7/7',
      90_000,
      50,
    );
    const seen = Date.now();
    await page.waitForFunction(
      () => document.querySelectorAll('.node .task[data-service=web][data-state=running]').length === 7,
      { timeout: 15_000, polling: 20 },
    );
    const s = await shown();
    assert.equal(s.reloads, 1, 'the page was reloaded');
    assert.equal(await page.$eval('tr.svc[data-name=web] .sr', (td) => td.textContent), '7/7');
    console.log(`# page showed 7 tasks ${Date.now() - seen} ms after docker service ls did`);
  });

  it('a node label (docker node update --label-add) shows on its card without a reload', async () => {
    await ok('m1', ['node', 'update', '--label-add', 'zone=blue', 'm2']);
    await page.waitForFunction(
      () => document.querySelector('.node[data-host=m2] .nl')?.textContent === 'node: zone=blue',
      { timeout: 30_000 },
    );
    assert.equal((await shown()).reloads, 1);
  });

  it('a removed machine turns Down on the page', async () => {
    await lab.machine(['rm', '-y', 'm3']);
    await waitFor(
      'm3 Down in node ls',
      async () => (await ok('m1', ['node', 'ls', '--filter', 'name=m3', '--format', '{{.Status}}'])).trim() === 'Down',
      60_000,
      50,
    );
    await page.waitForFunction(
      () => document.querySelector<HTMLElement>('.node[data-host=m3]')?.dataset.state === 'down',
      { timeout: 15_000, polling: 20 },
    );
    assert.equal((await shown()).reloads, 1);
    // The tasks rescheduled off m3 show on the others.
    await page.waitForFunction(
      () =>
        document.querySelectorAll('.node:not([data-host=m3]) .task[data-service=web][data-state=running]').length === 7,
      { timeout: 60_000 },
    );
    await page.screenshot({ path: path.join(REPO_ROOT, 'docs', 'dashboard.png'), fullPage: true });
    assert.ok(fs.statSync(path.join(REPO_ROOT, 'docs', 'dashboard.png')).size > 10_000);
  });

  it("one token for the swarm: every manager prints it, and it logs in on the other manager's page", async () => {
    // After an etcd leader change (the CI failure's suspect): the token and the login still work.
    await moveEtcdLeader();
    assert.equal(await dashToken('m2'), token);
    page2 = await browser.newPage();
    const res = await page2.goto(url2);
    assert.equal(res?.status(), 401);
    await logIn(page2, token);
    await page2.waitForFunction(() => document.querySelectorAll('.node').length === 3, { timeout: 30_000 });
  });

  it('a token rotated on one manager logs the pages out on every manager', async () => {
    await moveEtcdLeader();
    const rotated = await dashToken('m2', true);
    assert.match(rotated, /^[A-Za-z0-9_-]{43}$/);
    assert.notEqual(rotated, token);
    // Each open stream ends; the page's reconnect meets 401 and it reloads to the login form.
    for (const p of [page, page2]) {
      await p.waitForSelector('form[action="/login"]', { timeout: 30_000 });
      assert.equal(await p.evaluate(async () => (await fetch('/api/snapshot')).status), 401);
    }
    // The other manager prints the new token, and it logs in there (in a new tab: nothing of the old page left running).
    assert.equal(await dashToken('m1'), rotated);
    const fresh = await browser.newPage();
    assert.equal((await fresh.goto(url))?.status(), 401);
    await logIn(fresh, rotated);
  });
});
