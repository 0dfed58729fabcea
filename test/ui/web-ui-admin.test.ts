// The web UI's admin pages in a real headless Chromium against a real broker: create a user on
// the Users page and log in as it (its tags decide what shows), and every admin page (users,
// vhosts, permissions, policies, limits, definitions) renders without errors at laptop and phone
// width. Screenshots into test/ui/artifacts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { apiCall, launchBrowser, logIn, screenshot, startUiTarget, type Browser, type UiTarget } from './support.js';

const unique = (prefix: string): string => `${prefix}-${randomBytes(4).toString('hex')}`;

describe('web UI admin pages in headless Chromium', () => {
  let target: UiTarget;
  let browser: Browser;
  const cleanups: (() => Promise<unknown>)[] = [];

  beforeAll(async () => {
    target = await startUiTarget();
    browser = await launchBrowser();
  }, 60_000);

  afterAll(async () => {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
    await browser?.close();
    await target?.stop();
  });

  it('creates a user on the Users page, then logs in as it (management tag: no admin pages)', async () => {
    const name = unique('ui-user');
    cleanups.push(() => apiCall(target.apiUrl, 'DELETE', `/users/${name}`));
    const page = await browser.newPage();
    await logIn(page, target.baseUrl, 'guest', 'guest');
    await page.goto(`${target.baseUrl}#/users`);
    const form = page.locator('#add-user form');
    await form.locator('input[name=name]').fill(name);
    await form.locator('input[name=password]').fill('s3cret-pass');
    await form.locator('input[name=tag-management]').check();
    await form.locator('button[type=submit]').click();
    await expect(form.locator('.notice').textContent()).resolves.toContain(`User “${name}” added.`);
    await page.locator(`table.list td:text-is("${name}")`).waitFor();
    await screenshot(page, 'users');
    await page.click('button:text("Log out")');

    await logIn(page, target.baseUrl, name, 's3cret-pass');
    expect(await page.locator('.top nav a').allTextContents()).toEqual(['Overview', 'Connections', 'Channels', 'Exchanges', 'Queues']);
    expect(page.errors).toEqual([]);
    await page.close();
  });

  it('every admin page renders without errors at laptop and phone width', async () => {
    const pages: [string, string, string][] = [
      ['users', '#/users', '[data-table=users] tbody tr'],
      ['vhosts', '#/vhosts', '[data-table=vhosts] tbody tr'],
      ['permissions', '#/permissions', '[data-table=permissions] tbody tr'],
      ['policies', '#/policies', '[data-kind=policies]'],
      ['limits', '#/limits', 'h1'],
      ['definitions', '#/definitions', '#export'],
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
      await page.close();
    }
  });
});
