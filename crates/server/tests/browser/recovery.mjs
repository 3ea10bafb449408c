// Recovery and reset in real headless Chromium: /recover with a recovery code and the e-mailed
// code, a new device through the enrollment pages; "this wasn't me" from the notification; as
// admin, the user's recovery controls (the password page appears first, then the change is
// applied): unlock self-service, e-mail delivery, new codes mailed or shown once, an account
// reset whose link brings the password hint to the login; then /reset from the e-mailed link.
//
// Started by tests/browser.rs with: BASE, NOW (the server's fixed Unix time), PASSWORD,
// RECOVERY_CODE (one of carol's), OUTBOX (the server's outbox directory). Prints one line per
// step; any failed expectation throws, and the exit status is not 0.
import { chromium } from 'playwright-core';
import { expect, launch, mailAfter, outbox, totp } from './lib.mjs';

const { BASE, NOW, PASSWORD, RECOVERY_CODE, OUTBOX } = process.env;
const now = Number(NOW);
const mails = () => outbox(OUTBOX).length;
const pathOf = (text, prefix) => {
  const at = text.indexOf(prefix);
  if (at < 0) throw new Error(`no ${prefix} link in the mail`);
  return text.slice(at).split(/\s/)[0];
};

// Walks the enrollment pages from the landing page to the recovery codes.
async function enroll(page, name) {
  await page.getByRole('button', { name: 'Show QR code' }).first().click();
  await page.waitForURL('**/qr**');
  const key = (await page.locator('code.key').textContent()).replace(/\s/g, '');
  await page.getByRole('link', { name: 'Next: enter the passcode' }).click();
  await page.locator('#name').fill(name);
  await page.locator('#code').fill(totp(key, now));
  await page.locator('form button[type=submit]').click();
  await page.locator('#saved').waitFor({ timeout: 10000 });
  return page.locator('ol.codes li').count();
}

const browser = await launch(chromium);
try {
  // 1. Lost phone: username and recovery code, then the e-mailed code, then a new device.
  const user = await (await browser.newContext({ locale: 'en-US' })).newPage();
  await user.goto(`${BASE}/login`);
  await user.getByRole('link', { name: 'Lost your device? Recover your account' }).click();
  await user.getByLabel('Username').fill('carol');
  await user.getByLabel('Recovery code').fill(RECOVERY_CODE);
  let before = mails();
  await user.getByRole('button', { name: 'Continue' }).click();
  await user.getByLabel('Code from the e-mail').waitFor();
  const codeMail = await mailAfter(OUTBOX, before, 'Your recovery code');
  const emailed = codeMail.text.match(/\b\d{8}\b/)[0];
  expect(true, 'the recovery code was accepted; a one-time code arrived by e-mail');
  await user.getByRole('button', { name: 'Auf Deutsch' }).click();
  await user.getByLabel('Code aus der E-Mail').waitFor();
  await user.getByRole('button', { name: 'In English' }).click();
  await user.getByLabel('Code from the e-mail').waitFor();
  expect(true, 'switching the language on the code step keeps the step');
  await user.getByLabel('Code from the e-mail').fill(emailed);
  before = mails();
  await user.getByRole('button', { name: 'Set up a new device' }).click();
  await user.waitForURL('**/enroll/**');
  expect(true, 'the e-mailed code leads into the enrollment pages');
  expect(await enroll(user, 'Ersatzhandy') === 10, 'the new device is active; new recovery codes shown');

  // 2. The notification's "this wasn't me" link blocks and locks.
  const notice = await mailAfter(OUTBOX, before, 'Your account was recovered');
  await user.goto(BASE + pathOf(notice.text, '/not-me/'));
  await user.getByRole('button', { name: 'Block my account now' }).click();
  await user.getByText('self-service is locked').waitFor();
  expect(true, '"this wasn\'t me" blocks the device and locks self-service');

  // 3. As admin: unlock (the password page first), e-mail delivery, new codes, a reset.
  const admin = await (await browser.newContext({ locale: 'en-US' })).newPage();
  await admin.goto(`${BASE}/login`);
  await admin.getByLabel('Username').fill('root');
  await admin.getByLabel('Password', { exact: true }).fill(PASSWORD);
  await admin.getByRole('button', { name: 'Sign in' }).click();
  await admin.waitForURL('**/portal');
  await admin.goto(`${BASE}/admin/users/carol`);
  expect(await admin.getByText('Self-service locked', { exact: true }).isVisible(), 'the admin sees the lock');
  await admin.getByRole('button', { name: 'Unlock self-service' }).click();
  await admin.getByRole('heading', { name: 'Confirm with your password' }).waitFor();
  expect(true, 'unlocking asks for the password again');
  await admin.getByLabel('Password', { exact: true }).fill(PASSWORD);
  await admin.getByRole('button', { name: 'Confirm' }).click();
  await admin.waitForURL('**/admin/users/carol?done=unlocked**');
  expect(await admin.getByText('Self-service is unlocked again.').isVisible(), 'self-service unlocked');

  await admin.getByLabel('New recovery codes issued by an admin are').selectOption('email');
  await admin.getByRole('button', { name: 'Save recovery settings' }).click();
  await admin.waitForURL('**/admin/users/carol?done=recovery**');
  expect(await admin.getByText('In force: E-mailed to the user (set for this user)').isVisible(),
    'the delivery is set for this user, and shown so');
  before = mails();
  await admin.getByRole('button', { name: 'Issue new recovery codes' }).click();
  await admin.waitForURL('**/admin/users/carol?done=codes_mailed**');
  const reissued = await mailAfter(OUTBOX, before, 'New recovery codes');
  expect(reissued.text.match(/[A-Z0-9]{5}-[A-Z0-9]{5}/g).length === 10, 'ten new codes were e-mailed to carol');

  await admin.goto(`${BASE}/admin/users/dave`);
  await admin.getByRole('button', { name: 'Issue new recovery codes' }).click();
  await admin.getByRole('heading', { name: 'New recovery codes' }).waitFor();
  expect(await admin.locator('ol.codes li').count() === 10, 'for dave, ten codes are shown once to the admin');
  await admin.getByRole('link', { name: 'Back to the user' }).first().click();
  await admin.getByLabel('New password').fill('dave has a new password');
  await admin.getByLabel('Password hint (optional)').fill('the one from the blue card');
  await admin.getByLabel('Yes, delete all devices and recovery codes of this user').check();
  await admin.getByLabel('Your own password, to confirm').fill(PASSWORD);
  await admin.getByRole('button', { name: 'Reset account' }).click();
  await admin.getByRole('heading', { name: 'Account reset' }).waitFor();
  const link = (await admin.locator('#enroll-link').textContent()).trim();
  expect(link.includes('/enroll/'), 'the reset shows the enrollment link to pass on');
  const dave = await (await browser.newContext({ locale: 'en-US' })).newPage();
  await dave.goto(BASE + new URL(link).pathname);
  await dave.goto(`${BASE}/login`);
  expect((await dave.locator('#password-hint').textContent()).includes('the one from the blue card'),
    'the browser that opened the link sees the hint at the login');

  // 4. carol resets her account from the e-mailed link; the login then shows her hint.
  const reset = await (await browser.newContext({ locale: 'en-US' })).newPage();
  await reset.goto(`${BASE}/login`);
  expect(await reset.locator('#password-hint').count() === 0, 'a fresh browser sees no hint');
  await reset.getByRole('link', { name: /Reset your account/ }).click();
  await reset.getByLabel('E-mail address').fill('carol@example.org');
  before = mails();
  await reset.getByRole('button', { name: 'Send me a reset link' }).click();
  await reset.getByText('If this address belongs to an account').waitFor();
  const resetMail = await mailAfter(OUTBOX, before, 'Reset your account');
  await reset.goto(BASE + pathOf(resetMail.text, '/reset/'));
  expect(await reset.getByText('A reset deletes all your devices').first().isVisible(),
    'the reset page states what will be deleted');
  await reset.getByLabel('New password', { exact: true }).fill('carol starts over now');
  await reset.getByLabel('Repeat the new password').fill('carol starts over now');
  await reset.getByLabel('Password hint (optional)').fill('the garden one');
  await reset.getByRole('button', { name: 'Delete everything and set the new password' }).click();
  await reset.waitForURL('**/enroll/**');
  expect(await enroll(reset, 'Neues Handy') === 10, 'after the reset a new device is enrolled');
  await reset.goto(`${BASE}/login`);
  expect((await reset.locator('#password-hint').textContent()).includes('the garden one'),
    'the login shows carol her hint');
} finally {
  await browser.close();
}
