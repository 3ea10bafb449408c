// "Program a hardware token" in real headless Chromium: the admin opens a user's page, asks for
// the key (password again), sees it once with the QR code and the server's clock running (a
// style sheet, no scripts), burns it into a "token" whose clock is 7 steps ahead, and activates
// it with the code it shows: the page reports the offset.
//
// Started by tests/browser.rs with: BASE, NOW (the server's fixed Unix time), PASSWORD.
import { chromium } from 'playwright-core';
import { expect, launch, totp } from './lib.mjs';

const { BASE, NOW, PASSWORD } = process.env;

const browser = await launch(chromium);
try {
  const page = await (await browser.newContext({ locale: 'en-US' })).newPage();
  const now = Number(NOW);

  // 1. Log in as the admin, open alice's page, ask for a key: the password is asked again.
  await page.goto(`${BASE}/login`);
  await page.getByLabel('Username').fill('root');
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL('**/portal');
  await page.goto(`${BASE}/admin/users/alice`);
  await page.getByLabel('Serial number printed on the token (optional)').fill('2100123456');
  await page.getByRole('button', { name: 'Make the key and show it' }).click();
  await page.getByRole('heading', { name: 'Confirm with your password' }).waitFor({ timeout: 10000 });
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Confirm' }).click();
  await page.getByRole('heading', { name: 'Program a hardware token' }).waitFor({ timeout: 10000 });
  expect(await page.locator('figure.qr svg').isVisible(), 'after re-authentication the QR code is shown');
  const secret = (await page.locator('#secret-base32').textContent()).replace(/\s/g, '');
  const hex = (await page.locator('#secret-hex').textContent()).replace(/\s/g, '');
  expect(secret.length === 32 && hex.length === 40, 'the key in base32 and in hex');
  expect((await page.locator('#once').textContent()).includes('never again'), 'the page says the key is shown once');

  // 2. The clock: starts at the server's time of day and runs.
  const clock = async () => page.evaluate(() => {
    const value = (unit) => Number(getComputedStyle(document.querySelector(`#utc-clock .${unit}`), '::after')
      .getPropertyValue(`--clock-${unit}`));
    return { h: value('h'), m: value('m'), s: value('s') };
  });
  const first = await clock();
  const day = now % 86400;
  const expected = Math.floor(day / 3600) * 3600 + Math.floor((day % 3600) / 60) * 60;
  const shown = first.h * 3600 + first.m * 60;
  expect(Math.abs(shown - expected) <= 60, `the clock shows the server's time (${first.h}:${first.m}:${first.s})`);
  await page.waitForTimeout(2200);
  const second = await clock();
  const elapsed = ((second.h * 3600 + second.m * 60 + second.s) - (first.h * 3600 + first.m * 60 + first.s) + 86400) % 86400;
  expect(elapsed >= 1 && elapsed <= 4, `the clock runs (${elapsed} s later)`);
  expect((await page.locator('.server-clock').textContent()).includes('off and on again'),
    'the page says to check the PC clock and power-cycle the token');

  // 3. The token's clock is 7 steps ahead: one code activates it; the page reports the offset.
  await page.locator('.program-activate input[name=code]').fill(totp(secret, now + 210));
  await page.getByRole('button', { name: 'Activate' }).click();
  await page.locator('#program-result').waitFor({ timeout: 10000 });
  const result = await page.locator('#program-result').textContent();
  expect(result.includes('The hardware token is active.') && result.includes('about 225 s ahead'),
    'active; the token clock\'s offset is reported');

  // 4. Back on the user's page: the token is active, the key is nowhere.
  await page.getByRole('link', { name: 'Back' }).click();
  await page.waitForURL('**/admin/users/alice');
  const body = await page.locator('main').textContent();
  expect(body.includes('Hardware token 2100123456') && !body.includes(secret.slice(0, 8)),
    'the user\'s page lists the token and never the key');
} finally {
  await browser.close();
}
