// Clicks through the web pages in real headless Chromium (Debian's, never a downloaded one):
// log in with password and code; add a second device through the enrollment pages; rename and
// remove it; regenerate recovery codes; as admin, tick "OTP required", clear the phone number,
// confirm with the password, see the change saved and audited; log out.
//
// Started by tests/browser.rs with: BASE (server URL), NOW (the server's fixed Unix time),
// PASSWORD, SECRET (base32 seed of alice's first token). Prints one line per step; any failed
// expectation throws, and the exit status is not 0.
import { chromium } from 'playwright-core';
import { expect, launch, totp } from './lib.mjs';

const { BASE, NOW, PASSWORD, SECRET } = process.env;

const browser = await launch(chromium);
try {
  const page = await (await browser.newContext({ locale: 'en-US' })).newPage();
  const now = Number(NOW);

  // 1. Log in with password and code.
  await page.goto(`${BASE}/login`);
  await page.getByLabel('Username').fill('alice');
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByLabel('Passcode').fill(totp(SECRET, now));
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL('**/portal');
  expect(await page.getByText('Diensthandy').isVisible(), 'logged in; the portal lists the device');

  // 2. Add a second device: password again, then the enrollment pages.
  await page.getByRole('button', { name: 'Add another device' }).click();
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Confirm' }).click();
  await page.waitForURL('**/enroll/**');
  expect(true, 'after re-authentication, the enrollment pages open');
  await page.getByRole('button', { name: 'Show QR code' }).first().click();
  await page.waitForURL('**/qr**');
  // The key sits in the collapsed 'type it in' section: its text, as a person would open it.
  const key = (await page.locator('code.key').textContent()).replace(/\s/g, '');
  await page.getByRole('link', { name: 'Next: enter the passcode' }).click();
  await page.locator('#name').fill('Tablet');
  await page.locator('#code').fill(totp(key, now));
  await page.locator('form button[type=submit]').click();
  await page.locator('#saved').waitFor({ timeout: 10000 }).catch(async (e) => {
    console.log(page.url(), await page.locator('main').innerText());
    throw e;
  });
  expect(await page.locator('ol.codes li').count() === 10, 'the new device is active; recovery codes shown');
  await page.locator('#saved').check();
  await page.locator('form button[type=submit]').click();
  await page.goto(`${BASE}/portal`);
  const tablet = page.locator('li.device', { hasText: 'Tablet' });
  expect(await tablet.count() === 1, 'the portal lists the second device');

  // 3. Rename it, then remove it (still within the re-authentication window).
  await tablet.locator('input[name=name]').fill('iPad');
  await tablet.getByRole('button', { name: 'Rename' }).click();
  await page.waitForURL('**/portal?done=renamed');
  const ipad = page.locator('li.device', { hasText: 'iPad' });
  expect(await ipad.count() === 1, 'the device is renamed');
  await ipad.getByRole('button', { name: 'Remove' }).click();
  await page.waitForURL('**/portal?done=removed');
  expect(await page.locator('li.device', { hasText: 'iPad' }).count() === 0, 'the device is removed');

  // 4. New recovery codes, shown once.
  await page.getByRole('button', { name: 'Create new recovery codes' }).click();
  await page.getByRole('heading', { name: 'Your new recovery codes' }).waitFor({ timeout: 10000 });
  expect(await page.locator('ol.codes li').count() === 10, 'ten new recovery codes');

  // 5. Log out.
  await page.getByRole('button', { name: /Sign out/ }).click();
  await page.waitForURL('**/login**');
  await page.goto(`${BASE}/portal`);
  expect(page.url().includes('/login'), 'after logout the portal asks to log in');

  // 6. As admin: OTP required, phone cleared, password asked, saved and audited.
  await page.getByLabel('Username').fill('root');
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL('**/portal');
  await page.getByRole('link', { name: 'Users' }).click();
  await page.getByRole('link', { name: 'bob' }).click();
  await page.getByLabel('One-time password (OTP) required').check();
  await page.getByLabel('Phone number').fill('');
  await page.getByRole('button', { name: 'Save', exact: true }).click();
  await page.getByRole('heading', { name: 'Confirm with your password' }).waitFor({ timeout: 10000 });
  expect(await page.getByRole('heading', { name: 'Confirm with your password' }).isVisible(),
    'saving asks for the password again');
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Confirm' }).click();
  // bob's only device sent SMS: without the number it cannot, so the setup link goes out too.
  await page.waitForURL('**/admin/users/bob?done=saved_invited');
  expect(await page.getByText('a setup link was e-mailed to them').isVisible(), 'the notice says the link went out');
  expect(await page.getByLabel('One-time password (OTP) required').isChecked(), 'OTP required is saved');
  expect(await page.getByLabel('Phone number').inputValue() === '', 'the phone number is cleared');
  expect(await page.getByRole('cell', { name: 'phone cleared, SMS disabled, otp_required true', exact: true }).isVisible(),
    'the change is in the audit trail');
  await page.getByRole('button', { name: /Sign out/ }).click();
  await page.waitForURL('**/login**');
  expect(true, 'admin logged out');
} finally {
  await browser.close();
}
