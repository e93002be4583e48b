/**
 * The web dashboard in real headless Chromium (Debian's chromium, driven by playwright-core)
 * against a real kilnd and real microVMs, over the TCP listener with an admin-scoped key:
 * sign in (a wrong key is a readable error), two sandboxes created through the API appear
 * in the table without a reload, one's page shows its CPU graph climbing while a busy loop
 * runs in it (read from the chart's data), `echo hi` typed into the web terminal reads `hi`
 * back from xterm's screen, destroying it from the UI takes it out of the table and its page
 * says it was destroyed; exposed ports show as links (a private one signed on demand). Screenshots go to the test artifacts; axe-core finds no critical
 * accessibility violation on the table, sandbox and host pages.
 */
import { after, before, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Browser, Page } from 'playwright-core';
import { DaemonFixture, integrationSkipReason } from './harness.js';
import { artifactPath, browserMissing, launchBrowser } from './browser.js';

const skip = integrationSkipReason() ?? browserMissing();
const AXE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: unknown[];
}

describe('the web dashboard in headless Chromium on a real kilnd', { skip: skip || false }, () => {
  const fx = new DaemonFixture('dashboard');
  let browser: Browser;
  let page: Page;
  let base = '';
  let key = '';
  const ids: string[] = [];

  const api = async <T>(method: string, path: string, body?: unknown): Promise<T> => {
    const res = await fetch(base + path, { method, headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
    const text = await res.text();
    assert.ok(res.ok, `${method} ${path}: ${res.status} ${text}`);
    return (text ? JSON.parse(text) : undefined) as T;
  };
  /** No critical axe-core violation on the page as it is now (serious ones are printed). */
  const axe = async (name: string) => {
    const violations = (await page.evaluate(`${AXE}; axe.run(document, { resultTypes: ['violations'] }).then((r) => r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => n.target) })))`)) as AxeViolation[];
    for (const v of violations) console.log(`axe ${name}: ${v.impact} ${v.id} — ${v.help} ${JSON.stringify(v.nodes).slice(0, 300)}`);
    assert.deepEqual(violations.filter((v) => v.impact === 'critical').map((v) => v.id), [], `${name}: critical accessibility violations`);
  };

  before(async () => {
    await fx.start({ KILN_LISTEN: '127.0.0.1:0', KILN_PROXY_LISTEN: '127.0.0.1:0' });
    const line = readFileSync(fx.logPath, 'utf8').split('\n').find((l) => l.includes('"kilnd listening"'));
    const port = (JSON.parse(line ?? '{}') as { tcp?: { port?: number } }).tcp?.port ?? 0;
    assert.ok(port > 0, 'kilnd logged its TCP port');
    base = `http://127.0.0.1:${port}`;
    const made = await fx.cli(['key', 'create', '--tenant', 'ops', '--scope', 'admin', '--name', 'dashboard']);
    assert.equal(made.code, 0, made.stderr.toString());
    key = made.stdout.toString().trim();
    browser = await launchBrowser();
    page = await browser.newPage({ viewport: { width: 1360, height: 900 } });
    page.on('dialog', (d) => void d.accept());
  });
  after(async () => {
    await browser?.close();
    for (const id of ids) await fx.client.call('DELETE', `/v1/sandboxes/${id}`).catch(() => undefined);
    await fx.close();
  });
  const t = (name: string, fn: () => Promise<void>) => fx.test(name, fn);

  t('sign in; two sandboxes made through the API appear without a reload', async () => {
    await page.goto(`${base}/ui/`);
    await page.getByLabel('API key').fill(`kiln_0123456789abcdef_${'A'.repeat(43)}`);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('alert').filter({ hasText: 'unknown API key (UNAUTHENTICATED)' }).waitFor();
    await page.getByLabel('API key').fill(key);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Sandboxes' }).waitFor();
    await axe('sign-in → table (empty)');
    for (let i = 0; i < 2; i++) ids.push((await api<{ id: string }>('POST', '/v1/sandboxes?wait=false', { labels: { made: `e2e-${i}` } })).id);
    for (const id of ids) await page.locator(`tr[data-sandbox="${id}"]`).waitFor({ timeout: 30_000 });
    // Both running, as the table shows it (state from the events stream, no reload).
    for (const id of ids) await page.locator(`tr[data-sandbox="${id}"] .state-running`).waitFor({ timeout: 600_000 });
    await page.screenshot({ path: artifactPath('dashboard-table.png'), fullPage: true });
    await axe('sandbox table');
  });

  t("a sandbox's page: the CPU graph climbs with a busy loop; the web terminal echoes hi", async () => {
    const id = ids[0] as string;
    await page.getByRole('link', { name: id }).click();
    await page.getByRole('heading', { name: `Sandbox ${id}` }).waitFor();
    const cpu = page.locator('#chart-cpu');
    const chart = async () => ({
      points: Number(await cpu.getAttribute('data-points')),
      recent: ((await cpu.getAttribute('data-recent')) ?? '').split(',').filter(Boolean).map(Number),
    });
    // Idle first (the graph settles once the guest is up): three points in a row under 10 %.
    let idle = await chart();
    for (let seen = 0, tries = 0; !(idle.recent.length >= 3 && idle.recent.slice(-3).every((v) => v < 10)); tries++) {
      assert.ok(seen < 300 && tries < 1200, `the sandbox never idled: ${idle.recent.join(',')}`);
      await page.waitForTimeout(1000);
      const next = await chart();
      seen += next.points - idle.points;
      idle = next;
    }
    const baseline = Math.max(...idle.recent.slice(-3));
    // Two busy loops (the sandbox has two vCPUs). The host is shared, so the loop gets what
    // QEMU is given: the graph must rise well above the idle line, not reach a fixed figure.
    await api('POST', `/v1/sandboxes/${id}/processes`, { shell: 'for i in 1 2; do timeout 300 sh -c "while :; do :; done" & done; wait' });
    let busy = idle;
    for (;;) {
      await page.waitForTimeout(1000);
      busy = await chart();
      const fresh = busy.recent.slice(-Math.max(0, Math.min(busy.recent.length, busy.points - idle.points)));
      if (fresh.some((v) => v >= Math.max(20, 3 * baseline))) break;
      assert.ok(busy.points - idle.points < 60, `the CPU graph did not climb with a busy loop: idle ${idle.recent.join(',')}, busy ${fresh.join(',')}`);
    }
    console.log(`cpu graph: idle ${idle.recent.slice(-3).join(',')} %, then ${busy.recent.slice(-Math.max(1, busy.points - idle.points)).join(',')} %`);
    await api('POST', `/v1/sandboxes/${id}/exec`, { shell: 'pkill -f "while :" || true' }).catch(() => undefined);

    // Exposed ports, with their links: a public one links straight, a private one gets a signed link.
    await api('POST', `/v1/sandboxes/${id}/ports`, { port: 8080, public: true });
    await api('POST', `/v1/sandboxes/${id}/ports`, { port: 9090 });
    const publicLink = page.getByRole('link', { name: 'port 8080 (public)' });
    await publicLink.waitFor();
    assert.match((await publicLink.getAttribute('href')) ?? '', /8080/);
    await page.getByRole('button', { name: 'Get a signed link to port 9090' }).click();
    assert.match((await page.getByRole('link', { name: 'port 9090 (signed link, 1 h)' }).getAttribute('href')) ?? '', /kiln_sig=/);

    await page.getByRole('button', { name: 'Open terminal' }).click();
    await page.getByRole('status').filter({ hasText: 'Terminal: connected' }).waitFor({ timeout: 60_000 });
    await page.locator('.xterm').click();
    await page.keyboard.type('echo hi\n');
    // xterm's screen-reader buffer (screenReaderMode) holds the screen's rows as text.
    await page.locator('.xterm-accessibility-tree div').filter({ hasText: /^\s*hi\s*$/ }).first().waitFor({ timeout: 60_000 });
    await page.locator('#chart-cpu').scrollIntoViewIfNeeded();
    await page.screenshot({ path: artifactPath('dashboard-sandbox.png'), fullPage: true });
    await axe('sandbox page');
  });

  t('the host page shows capacity, templates, audit (chain verified) and doctor', async () => {
    await page.getByRole('link', { name: 'Host' }).click();
    await page.getByRole('heading', { name: 'Capacity' }).waitFor();
    await page.getByText(/Sandboxes: 2 of \d+ used/).waitFor();
    await page.getByRole('button', { name: 'Verify chain' }).click();
    await page.locator('#verify-result').filter({ hasText: 'The chain is intact' }).waitFor();
    await page.locator('.checks li').first().waitFor();
    await page.screenshot({ path: artifactPath('dashboard-host.png'), fullPage: true });
    await axe('host page');
  });

  t('destroying from the UI takes the sandbox out of the table; its page says it was destroyed', async () => {
    const id = ids[0] as string;
    await page.getByRole('link', { name: 'Sandboxes' }).click();
    await page.getByRole('button', { name: `Destroy ${id}` }).click();
    await page.locator(`tr[data-sandbox="${id}"]`).waitFor({ state: 'detached', timeout: 120_000 });
    assert.equal(await page.locator(`tr[data-sandbox="${ids[1]}"]`).count(), 1, 'the other one stays');
    await page.goto(`${base}/ui/#/sandbox/${id}`);
    await page.locator('.gone').filter({ hasText: /destroyed/ }).waitFor();
  });
});
