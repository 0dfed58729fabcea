// The management web UI in a real headless Chromium against a real broker, driven as a person
// would: log in, look at a queue amqplib just filled, peek a message, replay a dead-letter queue,
// close a connection (amqplib sees the reason), watch the overview chart move under a publisher.
// Every page is screenshotted into test/ui/artifacts. Admin pages: web-ui-admin.test.ts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import amqp from 'amqplib';
import { randomBytes } from 'node:crypto';
import { waitFor } from '../support/wait.js';
import { EXTERNAL_MGMT, apiCall, launchBrowser, logIn, screenshot, startUiTarget, type Browser, type UiTarget } from './support.js';

const unique = (prefix: string): string => `${prefix}-${randomBytes(4).toString('hex')}`;
const q = (name: string): string => `#/queues/${encodeURIComponent('/')}/${encodeURIComponent(name)}`;

describe('web UI in headless Chromium', () => {
  let target: UiTarget;
  let browser: Browser;
  const cleanups: (() => Promise<unknown>)[] = [];

  beforeAll(async () => {
    target = await startUiTarget();
    browser = await launchBrowser();
    // Pages refresh every 2 s instead of 5 s: the tests wait less for the next sample.
    await browser.context.addInitScript({ content: "localStorage.setItem('warren.refreshMs', '2000')" });
  }, 60_000);

  afterAll(async () => {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
    await browser?.close();
    await target?.stop();
  });

  async function connect(name: string): Promise<amqp.ChannelModel> {
    const conn = await amqp.connect(target.amqpUrl, { clientProperties: { connection_name: name } });
    conn.on('error', () => undefined);
    cleanups.push(() => conn.close());
    return conn;
  }

  it('logs in with a Warren user, and shows the API reason for a wrong password', async () => {
    const page = await browser.newPage();
    await page.goto(target.baseUrl);
    await screenshot(page, 'login');
    await page.fill('input[name=username]', 'guest');
    await page.fill('input[name=password]', 'not-the-password');
    await page.click('button[type=submit]');
    await expect(page.locator('.login .error').textContent()).resolves.toBe('Login failed');
    await page.fill('input[name=password]', 'guest');
    await page.click('button[type=submit]');
    await page.waitForSelector('[data-user="guest"]');
    expect(await page.locator('.top nav a').allTextContents()).toEqual([
      'Overview', 'Connections', 'Channels', 'Exchanges', 'Queues', 'Users', 'Vhosts', 'Permissions', 'Policies', 'Limits', 'Definitions',
    ]);
    // The refused attempt is the only thing Chromium complains about.
    expect(page.errors).toEqual(['Failed to load resource: the server responded with a status of 401 (Unauthorized)']);
    await page.close();
  });

  it('shows a queue that amqplib just filled, with its depth, in the list and on its page', async () => {
    const name = unique('ui-depth');
    const conn = await connect('ui-depth');
    const ch = await conn.createConfirmChannel();
    await ch.assertQueue(name, { durable: false });
    cleanups.push(() => apiCall(target.apiUrl, 'DELETE', `/queues/%2F/${name}`));
    for (let i = 0; i < 7; i++) ch.sendToQueue(name, Buffer.from(`message ${i}`));
    await ch.waitForConfirms();

    const page = await browser.newPage();
    await logIn(page, target.baseUrl, 'guest', 'guest');
    await page.goto(`${target.baseUrl}#/queues`);
    await page.fill('input[name=filter]', name);
    await waitFor(async () => (await page.locator('.paged .count').textContent())?.startsWith('1 of '), 'the name filter to apply');
    const row = page.locator('table.list tbody tr', { has: page.locator(`a.queue-link:text-is("${name}")`) });
    await expect(waitFor(async () => (await row.locator('td[data-col=ready]').textContent()) === '7', 'ready = 7 in the queue list', 20_000)).resolves.toBe(true);
    expect(await row.locator('td[data-col=messages]').textContent()).toBe('7');
    // Warren reports how long the head message has waited; RabbitMQ only a timestamp property, unset here.
    const oldest = await row.locator('td[data-col=oldest]').textContent();
    if (EXTERNAL_MGMT) expect(oldest).toBe('–');
    else expect(oldest).toMatch(/^\d+s$/);
    await screenshot(page, 'queues');
    await row.locator('a.queue-link').click();
    await page.waitForSelector(`[data-queue="${name}"]`);
    expect(await page.locator('[data-total=ready] .total-value').textContent()).toBe('7');
    expect(page.errors).toEqual([]);
    await page.close();
  });

  it('peeks a message: body as text, JSON and base64, headers and properties; the message stays', async () => {
    const name = unique('ui-peek');
    const conn = await connect('ui-peek');
    const ch = await conn.createConfirmChannel();
    await ch.assertQueue(name, { durable: false });
    cleanups.push(() => apiCall(target.apiUrl, 'DELETE', `/queues/%2F/${name}`));
    const body = JSON.stringify({ order: 42, item: 'spoon' });
    ch.sendToQueue(name, Buffer.from(body), { contentType: 'application/json', headers: { 'x-tenant': 'acme' }, messageId: 'm-42' });
    await ch.waitForConfirms();

    const page = await browser.newPage();
    await logIn(page, target.baseUrl, 'guest', 'guest');
    await page.goto(target.baseUrl + q(name));
    await page.waitForSelector(`[data-queue="${name}"]`);
    await page.click('#get button[type=submit]');
    const message = page.locator('[data-message="0"]');
    await message.waitFor();
    expect(await message.locator('pre.body').textContent()).toBe(JSON.stringify({ order: 42, item: 'spoon' }, null, 2));
    expect(await message.locator('pre.body').getAttribute('data-body-view')).toBe('json');
    await message.locator('.tabs button', { hasText: 'text' }).click();
    expect(await message.locator('pre.body').textContent()).toBe(body);
    await message.locator('.tabs button', { hasText: 'base64' }).click();
    expect(await message.locator('pre.body').textContent()).toBe(Buffer.from(body).toString('base64'));
    expect(await message.locator('table.args tr', { hasText: 'x-tenant' }).locator('td').textContent()).toBe('acme');
    expect(await message.locator('table.args tr', { hasText: 'message_id' }).locator('td').textContent()).toBe('m-42');
    await message.locator('.tabs button', { hasText: 'JSON' }).click();
    await screenshot(page, 'queue', 'full');
    // Peeking requeues: the message is still there for consumers.
    const check = await ch.checkQueue(name);
    expect(check.messageCount).toBe(1);
    expect(page.errors).toEqual([]);
    await page.close();
  });

  it.skipIf(EXTERNAL_MGMT)('replays a dead-letter queue: the x-death summary, then the messages are back in the original queue', async () => {
    const work = unique('ui-work');
    const dlq = `${work}.dlq`;
    const conn = await connect('ui-replay');
    const ch = await conn.createConfirmChannel();
    await ch.assertQueue(dlq, { durable: true });
    await ch.assertQueue(work, { durable: true, arguments: { 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': dlq } });
    cleanups.push(() => apiCall(target.apiUrl, 'DELETE', `/queues/%2F/${work}`), () => apiCall(target.apiUrl, 'DELETE', `/queues/%2F/${dlq}`));
    for (let i = 0; i < 3; i++) ch.sendToQueue(work, Buffer.from(`job ${i}`), { persistent: true });
    await ch.waitForConfirms();
    for (let i = 0; i < 3; i++) {
      const msg = await ch.get(work, { noAck: false });
      if (msg === false) throw new Error('expected a message');
      ch.nack(msg, false, false);
    }
    await waitFor(async () => (await ch.checkQueue(dlq)).messageCount === 3, 'three dead letters');

    const page = await browser.newPage();
    await logIn(page, target.baseUrl, 'guest', 'guest');
    await page.goto(target.baseUrl + q(dlq));
    await page.waitForSelector(`[data-queue="${dlq}"]`);
    await page.click('#replay summary');
    const summary = page.locator('#replay table.deaths tbody tr');
    await summary.first().waitFor();
    expect(await summary.count()).toBe(1);
    expect(await summary.locator('td').allTextContents()).toEqual(['rejected', work, '(default)', work, '3', expect.any(String)]);
    await screenshot(page, 'queue-replay');
    await page.click('#replay button[type=submit]');
    await expect(page.locator('#replay .notice').textContent()).resolves.toBe('Replayed 3 messages.');
    expect((await ch.checkQueue(work)).messageCount).toBe(3);
    expect((await ch.checkQueue(dlq)).messageCount).toBe(0);
    const back = await ch.get(work, { noAck: true });
    expect(back === false ? null : back.content.toString()).toBe('job 0');
    expect(page.errors).toEqual([]);
    await page.close();
  });

  it('closes a connection with a reason; amqplib sees 320 CONNECTION_FORCED with that reason', async () => {
    const label = unique('ui-close');
    const conn = await amqp.connect(target.amqpUrl, { clientProperties: { connection_name: label } });
    const closed = new Promise<Error | undefined>((resolve) => conn.on('close', resolve));
    conn.on('error', () => undefined);

    const page = await browser.newPage();
    await logIn(page, target.baseUrl, 'guest', 'guest');
    await page.goto(`${target.baseUrl}#/connections`);
    const link = page.locator('table.list tbody tr', { hasText: label }).locator('a').first();
    await waitFor(async () => (await link.count()) === 1, 'the connection in the list', 20_000);
    await screenshot(page, 'connections');
    await link.click();
    await page.waitForSelector('[data-connection]');
    expect(await page.locator('table.args tr', { hasText: 'connection_name' }).locator('td').textContent()).toBe(label);
    await screenshot(page, 'connection');
    await page.fill('#close input[name=reason]', 'maintenance window (from the UI test)');
    await page.click('#close button[type=submit]');
    const err = await closed;
    expect(err?.message).toContain('320');
    expect(err?.message).toContain('CONNECTION_FORCED - maintenance window (from the UI test)');
    await page.waitForURL(/#\/connections$/);
    expect(page.errors).toEqual([]);
    await page.close();
  });

  it('overview: the message-rate chart moves while a publisher runs', async () => {
    const name = unique('ui-rate');
    const conn = await connect('ui-rate');
    const ch = await conn.createConfirmChannel();
    await ch.assertQueue(name, { durable: false, arguments: { 'x-max-length': 1000 } });
    cleanups.push(() => apiCall(target.apiUrl, 'DELETE', `/queues/%2F/${name}`));

    const page = await browser.newPage();
    await logIn(page, target.baseUrl, 'guest', 'guest');
    await page.waitForSelector('#chart-rates canvas');
    const chart = page.locator('#chart-rates');
    const canvas = (): Promise<string> => page.locator('#chart-rates canvas').evaluate((c) => (c as unknown as { toDataURL(): string }).toDataURL());
    const samples = async (): Promise<number> => Number(await chart.getAttribute('data-samples'));
    await waitFor(async () => (await samples()) >= 1, 'the first sample on the chart');
    const before = await canvas();
    const samplesBefore = await samples();

    // Publish for at most 40 s, until the chart shows a publish rate above zero.
    let publishing = true;
    const deadline = Date.now() + 40_000;
    const publisher = (async () => {
      while (publishing && Date.now() < deadline) {
        for (let i = 0; i < 50; i++) ch.sendToQueue(name, Buffer.from('tick'));
        await ch.waitForConfirms();
      }
    })();
    try {
      // A sample taken after the publisher started, showing it.
      await waitFor(async () => (await samples()) >= samplesBefore + 2 && Number(await chart.getAttribute('data-last-publish')) > 0,
        'a new sample with a publish rate above 0 on the chart', 40_000);
      const moved = await canvas();
      expect(moved).not.toBe(before);
      expect(await page.locator('td[data-rate=publish]').textContent()).toMatch(/^[\d,.]+\/s$/);
      expect(await page.locator('td[data-rate=publish]').textContent()).not.toBe('0/s');
      await screenshot(page, 'overview', 'viewport');
    } finally {
      publishing = false;
      await publisher;
    }
    expect(page.errors).toEqual([]);
    await page.close();
  });

  it('every messaging page renders without errors at laptop and phone width, loading nothing from elsewhere', async () => {
    const name = unique('ui-tour');
    const conn = await connect('ui-tour');
    const ch = await conn.createChannel();
    await ch.assertQueue(name, { durable: false });
    cleanups.push(() => apiCall(target.apiUrl, 'DELETE', `/queues/%2F/${name}`));
    const pages: [string, string, string][] = [
      ['overview', '#/', '.overview'],
      ['queues', '#/queues', '.paged tbody tr'],
      ['queue', q(name), `[data-queue="${name}"]`],
      ['exchanges', '#/exchanges', '.paged tbody tr'],
      ['exchange', `#/exchanges/%2F/amq.direct`, '[data-exchange="amq.direct"]'],
      ['connections', '#/connections', '.paged tbody tr'],
      ['channels', '#/channels', '.paged tbody tr'],
    ];
    for (const width of [1280, 390]) {
      const page = await browser.newPage();
      await page.setViewportSize({ width, height: 860 });
      await logIn(page, target.baseUrl, 'guest', 'guest');
      for (const [label, hash, ready] of pages) {
        await page.goto(target.baseUrl + hash);
        await page.locator(ready).first().waitFor();
        await page.locator('.loading').first().waitFor({ state: 'detached' }).catch(() => undefined);
        expect([label, await page.locator('.error').allTextContents()]).toEqual([label, []]);
        await screenshot(page, `${label}-${width}`);
      }
      expect(page.errors).toEqual([]);
      const base = new URL(target.baseUrl).origin;
      expect(page.seenRequests.filter((u) => !u.startsWith(base) && !u.startsWith('data:'))).toEqual([]);
      await page.close();
    }
  });
});
