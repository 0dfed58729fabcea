// The web UI's forms in a real headless Chromium against a real broker: publish a message from an
// exchange's page (amqplib receives it, headers and all), add a policy and see it take effect on a
// queue, and export definitions to a file and import a file (download and upload, as a person does).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import amqp from 'amqplib';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { waitFor } from '../support/wait.js';
import { apiCall, launchBrowser, logIn, screenshot, startUiTarget, type Browser, type UiTarget } from './support.js';

const unique = (prefix: string): string => `${prefix}-${randomBytes(4).toString('hex')}`;

describe('web UI forms in headless Chromium', () => {
  let target: UiTarget;
  let browser: Browser;
  let conn: amqp.ChannelModel;
  const cleanups: (() => Promise<unknown>)[] = [];

  beforeAll(async () => {
    target = await startUiTarget();
    browser = await launchBrowser();
    conn = await amqp.connect(target.amqpUrl);
    conn.on('error', () => undefined);
  }, 60_000);

  afterAll(async () => {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
    await conn?.close().catch(() => undefined);
    await browser?.close();
    await target?.stop();
  });

  it('publishes a message from an exchange page; amqplib gets it with its headers and properties', async () => {
    const queue = unique('ui-publish');
    const ch = await conn.createChannel();
    await ch.assertQueue(queue, { durable: false });
    await ch.bindQueue(queue, 'amq.direct', queue);
    cleanups.push(() => apiCall(target.apiUrl, 'DELETE', `/queues/%2F/${queue}`));

    const page = await browser.newPage();
    await logIn(page, target.baseUrl, 'guest', 'guest');
    await page.goto(`${target.baseUrl}#/exchanges/%2F/amq.direct`);
    await page.waitForSelector('[data-exchange="amq.direct"]');
    await page.locator('table.bindings td', { hasText: queue }).first().waitFor();
    const form = page.locator('#publish form');
    await form.locator('input[name=routing_key]').fill(queue);
    await form.locator('textarea[name=headers]').fill('x-source = web-ui\nx-attempt = 3');
    await form.locator('textarea[name=properties]').fill('content_type = text/plain\nmessage_id = from-the-form');
    await form.locator('textarea[name=payload]').fill('hello from the publish form');
    await form.locator('button[type=submit]').click();
    await expect(form.locator('.notice').textContent()).resolves.toBe('Message published and routed.');
    await screenshot(page, 'exchange-publish');

    const got = await waitFor(async () => ch.get(queue, { noAck: true }), 'the published message');
    expect(got.content.toString()).toBe('hello from the publish form');
    expect(got.properties.headers).toEqual({ 'x-source': 'web-ui', 'x-attempt': 3 });
    expect(got.properties.contentType).toBe('text/plain');
    expect(got.properties.messageId).toBe('from-the-form');
    expect(got.properties.deliveryMode).toBe(2);

    // Nothing bound for this key: the page says so instead of pretending it worked.
    await form.locator('input[name=routing_key]').fill(unique('nobody-listens'));
    await form.locator('button[type=submit]').click();
    await expect(form.locator('.error').textContent()).resolves.toBe('Message published but not routed: no binding matched its routing key, so it was dropped.');
    expect(page.errors).toEqual([]);
    await page.close();
  });

  it('adds a policy on the Policies page; the queue page shows it applied; then deletes it', async () => {
    const queue = unique('ui-policy');
    const policy = unique('ttl');
    const ch = await conn.createChannel();
    await ch.assertQueue(queue, { durable: false });
    cleanups.push(() => apiCall(target.apiUrl, 'DELETE', `/queues/%2F/${queue}`), () => apiCall(target.apiUrl, 'DELETE', `/policies/%2F/${policy}`));

    const page = await browser.newPage();
    await logIn(page, target.baseUrl, 'guest', 'guest');
    await page.goto(`${target.baseUrl}#/policies`);
    const form = page.locator('[data-kind=policies] form').first();
    await form.locator('input[name=name]').fill(policy);
    await form.locator('input[name=pattern]').fill(`^${queue}$`);
    await form.locator('select[name=apply_to]').selectOption('queues');
    await form.locator('textarea[name=definition]').fill('message-ttl = 60000\nmax-length = 500');
    await form.locator('button[type=submit]').click();
    await expect(form.locator('.notice').textContent()).resolves.toBe(`Policy “${policy}” set.`);
    const row = page.locator('[data-table=policies] tbody tr', { hasText: policy });
    await row.waitFor();
    await screenshot(page, 'policies-added');

    await page.goto(`${target.baseUrl}#/queues/%2F/${queue}`);
    await page.waitForSelector(`[data-queue="${queue}"]`);
    const details = page.locator('dl.kv').first();
    await waitFor(async () => (await details.locator('dd').nth(2).textContent()) === policy, 'the policy named on the queue page', 15_000);
    expect(await details.locator('table.args tr', { hasText: 'message-ttl' }).locator('td').textContent()).toBe('60000');
    expect(await details.locator('table.args tr', { hasText: 'max-length' }).locator('td').textContent()).toBe('500');

    await page.goto(`${target.baseUrl}#/policies`);
    await row.locator('button', { hasText: 'Delete' }).click();
    await row.locator('button', { hasText: 'Yes, delete' }).click();
    await row.waitFor({ state: 'detached' });
    expect(await apiCall<unknown[]>(target.apiUrl, 'GET', '/policies/%2F')).toEqual([]);
    expect(page.errors).toEqual([]);
    await page.close();
  });

  it('exports definitions to a file and imports a file', async () => {
    const queue = unique('ui-defs');
    const imported = unique('ui-imported');
    const ch = await conn.createChannel();
    await ch.assertQueue(queue, { durable: true });
    cleanups.push(() => apiCall(target.apiUrl, 'DELETE', `/queues/%2F/${queue}`), () => apiCall(target.apiUrl, 'DELETE', `/queues/%2F/${imported}`));

    const page = await browser.newPage();
    await logIn(page, target.baseUrl, 'guest', 'guest');
    await page.goto(`${target.baseUrl}#/definitions`);
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#export button[type=submit]')]);
    expect(download.suggestedFilename()).toMatch(/^warren-definitions-\d{4}-\d{2}-\d{2}\.json$/);
    const dir = mkdtempSync(path.join(tmpdir(), 'warren-ui-defs-'));
    cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
    const file = path.join(dir, download.suggestedFilename());
    await download.saveAs(file);
    const exported = JSON.parse(readFileSync(file, 'utf8')) as { queues: { name: string; vhost: string; durable: boolean }[]; users: { name: string }[] };
    expect(exported.queues.filter((q) => q.name === queue)).toEqual([expect.objectContaining({ name: queue, vhost: '/', durable: true })]);
    expect(exported.users.map((u) => u.name)).toContain('guest');

    const upload = path.join(dir, 'import.json');
    writeFileSync(upload, JSON.stringify({ queues: [{ name: imported, vhost: '/', durable: true, auto_delete: false, arguments: { 'x-max-length': 10 } }] }));
    await page.setInputFiles('#import input[type=file]', upload);
    await page.click('#import button[type=submit]');
    await expect(page.locator('#import .notice').textContent()).resolves.toBe('Imported import.json.');
    const q = await apiCall<{ name: string; arguments: Record<string, unknown> }>(target.apiUrl, 'GET', `/queues/%2F/${imported}`);
    expect(q.arguments).toEqual({ 'x-max-length': 10 });

    // A file that is not JSON is refused before anything is sent.
    const bad = path.join(dir, 'broken.json');
    writeFileSync(bad, '{ not json');
    await page.setInputFiles('#import input[type=file]', bad);
    await page.click('#import button[type=submit]');
    await expect(page.locator('#import .error').textContent()).resolves.toMatch(/^broken\.json is not valid JSON: /);
    expect(page.errors).toEqual([]);
    await page.close();
  });
});
