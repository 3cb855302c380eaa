import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import {
  createTestPki,
  freePort,
  jobReachableTmpDir,
  startRedisServer,
  TEST_PYTHON,
  uniquePrefix,
  waitFor,
} from '@rps/common/testing';
import type { TestPki, TestRedisServer } from '@rps/common/testing';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import {
  ROOT,
  runBody,
  serviceMain,
  startFakeIvis,
  startProcess,
  stopProcess,
} from '../../rps-gateway/test/e2e-processes';

// The dashboard in a real browser against a real pool: Redis, the gateway,
// the manager and an agent run as processes from dist/; Debian's Chromium,
// driven by playwright-core, signs in with the token and watches a run that
// IVIS-core submits over mTLS: queued while no agent runs, then succeeded
// once one starts. Screenshots go to .rps/test-artifacts/ (see
// docs/remote-manager-dashboard.md).

const CHROMIUM = '/usr/bin/chromium';
// Without the background-networking flags Chromium keeps trying Google's
// hosts, which this machine's closed network refuses (.library env notes).
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const ARTIFACTS = path.join(ROOT, '.rps/test-artifacts');
const TOKEN = 'dashboard-browser-test-token-0123456789';
const RUN_ID = 4242;
// A machine name is user input: the page must show it as text, never run it.
const HOSTILE_NAME = '<img src=x onerror="window.__xss=1">';
const JOB = 'import sys\nsys.stdin.readline()\nprint("hello from the dashboard test", flush=True)\n';
// Bounds of a loaded 2-core machine shared with other test runs: process
// starts take seconds, a Python job's venv-less start a few more.
const START_MS = 60_000;
const RUN_MS = 90_000;
// A page step (navigation, a click and what it shows) waits up to 30 s; a test has a few.
const PAGE_MS = 120_000;

describe('dashboard in Chromium: a run goes from queued to succeeded', () => {
  let redis: TestRedisServer;
  let pki: TestPki;
  let ivis: Awaited<ReturnType<typeof startFakeIvis>>;
  let tmp: string;
  let managerUrl: string;
  let gatewayPort: number;
  let tlsAgent: https.Agent;
  let context: BrowserContext | undefined;
  let page: Page;
  let agentConfig: string;
  const children: ChildProcess[] = [];
  const logs: string[] = [];
  const consoleErrors: string[] = [];

  const submit = (runId: number) =>
    new Promise<number>((resolve, reject) => {
      const data = Buffer.from(JSON.stringify(runBody(runId, 7, JOB)));
      const req = https.request(
        {
          host: '127.0.0.1',
          port: gatewayPort,
          path: `/rps/run/${runId}`,
          method: 'POST',
          agent: tlsAgent,
          headers: { 'content-type': 'application/json', 'content-length': data.length },
        },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        },
      );
      req.on('error', reject);
      req.end(data);
    });

  const api = async (method: string, urlPath: string, body?: unknown) => {
    const res = await fetch(`${managerUrl}${urlPath}`, {
      method,
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };

  /** The text of a cell of the row `key` in table `table` (1-based column), or null while absent. */
  const cell = (table: string, key: string, column: number) =>
    page
      .locator(`#${table} tbody tr[data-key="${key}"] td:nth-child(${column})`)
      .textContent({ timeout: 1000 })
      .catch(() => null);

  beforeAll(async () => {
    if (!fs.existsSync(CHROMIUM)) {
      throw new Error(
        `${CHROMIUM} is missing: the dashboard test needs Debian's chromium ` +
          `(scripts/test.sh installs it as root; else run 'sudo apt-get install -y chromium')`,
      );
    }
    const gatewayMain = serviceMain('rps-gateway');
    const managerMain = serviceMain('remote-manager');
    serviceMain('peer-agent'); // built? (started by the test, once the run is seen queued)
    redis = await startRedisServer();
    pki = createTestPki();
    ivis = await startFakeIvis();
    tmp = jobReachableTmpDir('rps-dashboard-');
    const prefix = uniquePrefix('dash');
    const common = { redis: { url: redis.url, prefix }, log: { level: 'info' } };
    const write = (name: string, config: object) => {
      const file = path.join(tmp, name);
      fs.writeFileSync(file, JSON.stringify({ ...common, ...config }));
      return file;
    };

    gatewayPort = await freePort();
    const gatewayConfig = write('gateway.yaml', {
      gateway: {
        listen: { host: '127.0.0.1', port: gatewayPort },
        admin: { host: '127.0.0.1', port: await freePort() },
        tls: pki.paths,
        clients: [pki.clientIdentity],
      },
    });
    const managerPort = await freePort();
    managerUrl = `http://127.0.0.1:${managerPort}`;
    const managerConfig = write('manager.yaml', {
      manager: {
        listen: { host: '127.0.0.1', port: managerPort },
        caDir: path.join(tmp, 'ca'),
        token: TOKEN,
      },
    });
    agentConfig = write('peer-1.yaml', {
      agent: {
        id: 'peer-1',
        address: '127.0.0.1',
        capacity: 1,
        admin: { host: '127.0.0.1', port: await freePort() },
        executor: {
          kind: 'builtin',
          workDir: path.join(tmp, 'peer-1'),
          python: TEST_PYTHON,
          subtypes: { __default__: { libs: [] } },
          allowSameUser: true,
        },
        ivis: { trustedUrlBase: ivis.url, sandboxUrlBase: ivis.url, es: { host: '127.0.0.1', port: 9 } },
      },
    });
    children.push(startProcess(gatewayMain, gatewayConfig, logs));
    children.push(startProcess(managerMain, managerConfig, logs));
    tlsAgent = new https.Agent({ ca: pki.ca.cert, cert: pki.client.cert, key: pki.client.key });
    await waitFor(
      'the manager to answer /readyz',
      async () => (await fetch(`${managerUrl}/readyz`).catch(() => null))?.ok,
      { timeoutMs: START_MS, intervalMs: 200 },
    );

    context = await chromium.launchPersistentContext(fs.mkdtempSync(path.join(tmp, 'chromium-')), {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
      viewport: { width: 1280, height: 900 },
    });
    page = context.pages()[0] ?? (await context.newPage());
    page.on('pageerror', (err) => consoleErrors.push(`pageerror: ${err.message}`));
    page.on('console', (msg) => {
      if (msg.type() === 'error') consoleErrors.push(msg.text());
    });
    fs.mkdirSync(ARTIFACTS, { recursive: true });
  }, START_MS * 2);

  afterAll(async () => {
    if (process.env.E2E_LOGS) process.stderr.write(logs.join('').slice(-20_000));
    await context?.close().catch(() => undefined);
    tlsAgent?.destroy();
    await Promise.all(children.map((child) => stopProcess(child)));
    await ivis?.close();
    await redis?.stop();
    pki?.cleanup();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  }, 60_000);

  it(
    'when a run is submitted with no agent then the dashboard shows it queued, and succeeded once an agent runs it',
    async () => {
      await page.goto(`${managerUrl}/`);
      await page.locator('#token').fill(TOKEN);
      await page.locator('#signin-form button[type=submit]').click();
      await page.locator('#panels').waitFor({ state: 'visible', timeout: 30_000 });
      // The token stays in the tab's session storage, never in the URL.
      expect(await page.evaluate<string | null>("sessionStorage.getItem('rps.manager.token')")).toBe(TOKEN);
      expect(page.url()).not.toContain(TOKEN);

      // The registry's machine for the agent started below (machine id = peer id).
      expect((await api('POST', '/api/ca/init', { commonName: 'Dashboard test CA' })).status).toBe(201);
      const created = await api('POST', '/api/machines', {
        id: 'peer-1',
        name: HOSTILE_NAME,
        address: '127.0.0.1',
        type: 'manual',
        capacity: 1,
      });
      expect(created.status).toBe(201);
      await waitFor(
        'the machine on the dashboard',
        async () => (await cell('machines', 'peer-1', 1)) === HOSTILE_NAME,
        {
          timeoutMs: RUN_MS,
          intervalMs: 250,
        },
      );
      expect(await cell('machines', 'peer-1', 4)).toBe('provisioned');
      expect(await page.evaluate<unknown>('window.__xss')).toBeUndefined();
      expect(await page.locator('#machines img').count()).toBe(0);

      expect(await submit(RUN_ID)).toBe(200);
      await waitFor(
        'run 4242 queued on the dashboard',
        async () => (await cell('runs', `${RUN_ID}`, 2)) === 'queued',
        {
          timeoutMs: RUN_MS,
          intervalMs: 250,
        },
      );
      expect(await cell('runs', `${RUN_ID}`, 3)).toBe('–'); // no peer yet
      await waitFor(
        'the runs queue to show one waiting job',
        async () => (await cell('queues', 'runs', 2)) === '1',
        {
          timeoutMs: RUN_MS,
          intervalMs: 250,
        },
      );
      await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard-queued.png'), fullPage: true });

      children.push(startProcess(serviceMain('peer-agent'), agentConfig, logs));
      await waitFor(
        'peer-1 active on the dashboard',
        async () => (await cell('peers', 'peer-1', 2)) === 'active',
        {
          timeoutMs: START_MS,
          intervalMs: 250,
        },
      );
      await waitFor(
        'run 4242 succeeded on the dashboard',
        async () => (await cell('runs', `${RUN_ID}`, 2)) === 'succeeded',
        { timeoutMs: RUN_MS, intervalMs: 250 },
      );
      expect(await cell('runs', `${RUN_ID}`, 3)).toBe('peer-1');
      expect(await cell('peers', 'peer-1', 4)).toMatch(/^[01]\/1$/);
      // The machine follows its peer: state, load (running/capacity) and last heartbeat.
      await waitFor('machine peer-1 active', async () => (await cell('machines', 'peer-1', 4)) === 'active', {
        timeoutMs: START_MS,
        intervalMs: 250,
      });
      expect(await cell('machines', 'peer-1', 5)).toMatch(/^[01]\/1$/);
      expect(await cell('machines', 'peer-1', 6)).toMatch(/now|s ago/);
      expect(await page.evaluate<unknown>('window.__xss')).toBeUndefined();
      await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard.png'), fullPage: true });
      expect(fs.statSync(path.join(ARTIFACTS, 'dashboard.png')).size).toBeGreaterThan(1000);
      // IVIS-core got the final status too: the dashboard followed the real run.
      expect(
        ivis.received.some(
          (p) => p.path === '/rest/remote/status' && p.body.runId === RUN_ID && p.body.status?.status === 0,
        ),
      ).toBe(true);
    },
    START_MS + 3 * RUN_MS,
  );

  it(
    'when bull-board is opened from the dashboard then it shows the queues read-only',
    async () => {
      await page.locator('#queues-link').click();
      await page.waitForURL(`${managerUrl}/queues/`, { timeout: 30_000 });
      await page.getByText('runs', { exact: true }).first().waitFor({ timeout: 30_000 });
      await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard-queues.png'), fullPage: true });
      const answer = await page.evaluate(async () => {
        const res = await fetch('api/queues');
        return {
          status: res.status,
          body: (await res.json()) as { queues: Array<{ name: string; readOnlyMode: boolean }> },
        };
      });
      expect(answer.status).toBe(200);
      expect(answer.body.queues.map((q) => q.name)).toContain('runs');
      expect(answer.body.queues.every((q) => q.readOnlyMode)).toBe(true);
    },
    PAGE_MS,
  );

  it(
    'when the page signs out then the token is gone and bull-board sends the browser back to sign in',
    async () => {
      await page.goto(`${managerUrl}/`);
      await page.locator('#signout').click();
      await page.locator('#signin').waitFor({ state: 'visible', timeout: 30_000 });
      expect(await page.evaluate<string | null>("sessionStorage.getItem('rps.manager.token')")).toBeNull();
      await waitFor(
        'the session cookie cleared',
        async () => (await context!.cookies()).every((c) => c.value === ''),
        {
          timeoutMs: 30_000,
        },
      );
      await page.goto(`${managerUrl}/queues/`);
      expect(new URL(page.url()).pathname).toBe('/');
      expect(new URL(page.url()).searchParams.get('signin')).toBe('/queues');
    },
    PAGE_MS,
  );

  it('when the pages were used then the browser saw no script errors', () => {
    // bull-board's page links Google's fonts; the CSP blocks that request on purpose.
    expect(consoleErrors.filter((e) => !/fonts\.googleapis\.com|Failed to load resource/.test(e))).toEqual(
      [],
    );
  });
});
