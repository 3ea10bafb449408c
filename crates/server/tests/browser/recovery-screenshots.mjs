// Screenshots of recovery and reset (SPEC F4, F6), in English and German, at desktop
// (1280x900) and phone (390x844) size, into OUT/recovery/: every step of /recover, "this wasn't
// me", /reset and its confirmation, the password hint at the login, the admin's recovery
// controls (locked, the password page, saved), re-issued codes shown once, the admin's reset,
// and the mails (HTML, rendered by chromium). Documentation, not a test: scripts/web-screenshots.sh
// starts a server and runs this with BASE, BIN (the tessera binary), DATA (its data dir), OUT.
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { chromium } from 'playwright-core';
import { launch, mailAfter, outbox } from './lib.mjs';

const { BASE, BIN, DATA, OUT } = process.env;
const PASSWORD = 'a long demo password';
const OUTBOX = `${DATA}/outbox`;
const tessera = (args, input) =>
  execFileSync(BIN, ['--data-dir', DATA, ...args], { input, encoding: 'utf8' });
const oathtool = (secret) => execFileSync('oathtool', ['--totp', '-b', secret], { encoding: 'utf8' }).trim();
const mails = () => outbox(OUTBOX).length;
const pathOf = (text, prefix) => text.slice(text.indexOf(prefix)).split(/\s/)[0];

const sizes = {
  desktop: { viewport: { width: 1280, height: 900 }, userAgent: 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36' },
  phone: { viewport: { width: 390, height: 844 }, userAgent: 'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Chrome/131.0 Mobile Safari/537.36', isMobile: true },
};
const texts = {
  en: {
    signin: 'Sign in', user: 'Username', pw: 'Password', confirm: 'Confirm', name: 'Lena Walker',
    recoveryCode: 'Recovery code', next: 'Continue', emailed: 'Code from the e-mail', verify: 'Set up a new device',
    qr: 'Show QR code', passcode: 'Next: enter the passcode', block: 'Block my account now',
    unlock: 'Unlock self-service', selfRecovery: 'Self-recovery with a recovery code (/recover)',
    revoke: 'After a recovery, the old devices are', delivery: 'New recovery codes issued by an admin are',
    saveRec: 'Save recovery settings', issue: 'Issue new recovery codes', back: 'Back to the user',
    newPw: 'New password', repeatPw: 'Repeat the new password', hint: 'Password hint (optional)', resetTick: 'Yes, delete all devices and recovery codes of this user',
    resetBtn: 'Reset account', ownPw: 'Your own password, to confirm', email: 'E-mail address', sendReset: 'Send me a reset link',
    resetConfirm: 'Delete everything and set the new password', hintText: 'the blue notebook, page 3',
    subjects: { code: 'Your recovery code', recovered: 'Your account was recovered', reissued: 'New recovery codes were issued', codes: 'New recovery codes', reset: 'Reset your account', wasReset: 'Your account was reset' },
  },
  de: {
    signin: 'Anmelden', user: 'Benutzername', pw: 'Passwort', confirm: 'Bestätigen', name: 'Lena Weber',
    recoveryCode: 'Wiederherstellungscode', next: 'Weiter', emailed: 'Code aus der E-Mail', verify: 'Neues Gerät einrichten',
    qr: 'QR-Code anzeigen', passcode: 'Weiter: Passcode eingeben', block: 'Mein Konto jetzt sperren',
    unlock: 'Selbstbedienung entsperren', selfRecovery: 'Selbst wiederherstellen mit Wiederherstellungscode (/recover)',
    revoke: 'Nach einer Wiederherstellung werden die alten Geräte', delivery: 'Neue Wiederherstellungscodes von der IT werden',
    saveRec: 'Einstellungen speichern', issue: 'Neue Wiederherstellungscodes ausstellen', back: 'Zurück zum Benutzer',
    newPw: 'Neues Passwort', repeatPw: 'Neues Passwort wiederholen', hint: 'Passwort-Hinweis (optional)', resetTick: 'Ja, alle Geräte und Wiederherstellungscodes dieses Benutzers löschen',
    resetBtn: 'Konto zurücksetzen', ownPw: 'Ihr eigenes Passwort zur Bestätigung', email: 'E-Mail-Adresse', sendReset: 'Link zum Zurücksetzen senden',
    resetConfirm: 'Alles löschen und neues Passwort setzen', hintText: 'das blaue Notizbuch, Seite 3',
    subjects: { code: 'Ihr Wiederherstellungscode', recovered: 'Ihr Konto wurde wiederhergestellt', reissued: 'Neue Wiederherstellungscodes ausgestellt', codes: 'Neue Wiederherstellungscodes', reset: 'Konto zurücksetzen', wasReset: 'Ihr Konto wurde zurückgesetzt' },
  },
};

const browser = await launch(chromium);
mkdirSync(`${OUT}/recovery`, { recursive: true });
try {
  for (const [lang, x] of Object.entries(texts)) {
    for (const [size, opts] of Object.entries(sizes)) {
      const tag = `${lang}-${size}`;
      const file = (name) => `${OUT}/recovery/${name}-${tag}.png`;
      const shot = async (page, name) => {
        await page.screenshot({ path: file(name), fullPage: true });
        console.log(file(name));
      };
      // The viewport only, after scrolling `locator` to the top: one part of a long page.
      const shotAt = async (page, locator, name) => {
        await locator.evaluate((e) => e.scrollIntoView({ block: 'start' }));
        await page.screenshot({ path: file(name) });
        console.log(file(name));
      };
      // A mail's HTML body, as a mail program would show it (no scripts, no network).
      const mailShot = async (mail, name) => {
        const ctx = await browser.newContext({ ...opts, javaScriptEnabled: false, offline: true });
        const p = await ctx.newPage();
        if (size === 'desktop') await p.setViewportSize({ width: 760, height: 600 });
        await p.setContent(mail.html || `<pre>${mail.text}</pre>`);
        await shot(p, `mail-${name}`);
        await ctx.close();
      };

      const anna = `lena-${tag}`;
      const root = `it-${tag}`;
      tessera(['user', 'add', anna, '--display-name', x.name, '--email', `${anna}@example.org`, '--language', lang, '--password-stdin'], `${PASSWORD}\n`);
      tessera(['user', 'add', root, '--display-name', 'IT', '--email', `${root}@example.org`, '--language', lang, '--admin', '--password-stdin'], `${PASSWORD}\n`);
      const t = JSON.parse(tessera(['--json', 'token', 'add', anna, '--name', 'Diensthandy']));
      tessera(['token', 'verify', String(t.id), oathtool(new URL(t.otpauth_uri).searchParams.get('secret'))]);
      const codes = JSON.parse(tessera(['--json', 'recovery', 'issue', anna])).codes;

      // /recover: the first step, a wrong e-mailed code, the code step, the enrollment.
      const ctx = await browser.newContext({ ...opts, locale: lang });
      const page = await ctx.newPage();
      const start = async (code) => {
        await page.goto(`${BASE}/recover?lang=${lang}`);
        await page.getByLabel(x.user).fill(anna);
        await page.getByLabel(x.recoveryCode).fill(code);
      };
      await page.goto(`${BASE}/recover?lang=${lang}`);
      await shot(page, 'recover-1-start');
      await start(codes[0]);
      await page.getByRole('button', { name: x.next }).click();
      await page.getByLabel(x.emailed).waitFor();
      await page.getByLabel(x.emailed).fill('00000000');
      await page.getByRole('button', { name: x.verify }).click();
      await page.getByRole('alert').waitFor();
      await shot(page, 'recover-3-failed');
      let before = mails();
      await start(codes[1]);
      await page.getByRole('button', { name: x.next }).click();
      await page.getByLabel(x.emailed).waitFor();
      await shot(page, 'recover-2-code');
      const codeMail = await mailAfter(OUTBOX, before, x.subjects.code);
      await mailShot(codeMail, 'recovery-code');
      await page.getByLabel(x.emailed).fill(codeMail.text.match(/\b\d{8}\b/)[0]);
      await page.getByRole('button', { name: x.verify }).click();
      await page.waitForURL('**/enroll/**');
      await shot(page, 'recover-4-enroll');
      await page.getByRole('button', { name: x.qr }).first().click();
      await page.waitForURL('**/qr**');
      const key = (await page.locator('code.key').textContent()).replace(/\s/g, '');
      await page.getByRole('link', { name: x.passcode }).click();
      await page.locator('#name').fill('Ersatzhandy');
      before = mails();
      await page.locator('#code').fill(oathtool(key));
      await page.locator('form button[type=submit]').click();
      await page.locator('#saved').waitFor();
      const recovered = await mailAfter(OUTBOX, before, x.subjects.recovered);
      await mailShot(recovered, 'notification');

      // "This wasn't me".
      await page.goto(BASE + pathOf(recovered.text, '/not-me/'));
      await shot(page, 'not-me');
      await page.getByRole('button', { name: x.block }).click();
      await page.getByRole('heading').first().waitFor();
      await shot(page, 'not-me-done');
      await ctx.close();

      // The admin's recovery controls.
      const actx = await browser.newContext({ ...opts, locale: lang });
      const admin = await actx.newPage();
      await admin.goto(`${BASE}/login?lang=${lang}`);
      await admin.getByLabel(x.user).fill(root);
      await admin.getByLabel(x.pw, { exact: true }).fill(PASSWORD);
      await admin.getByRole('button', { name: x.signin }).click();
      await admin.waitForURL('**/portal');
      const userPage = `${BASE}/admin/users/${anna}`;
      await admin.goto(userPage);
      await shotAt(admin, admin.locator('#recovery'), 'admin-locked');
      await admin.getByRole('button', { name: x.unlock }).click();
      await admin.getByLabel(x.pw, { exact: true }).waitFor();
      await shot(admin, 'admin-reauth');
      await admin.getByLabel(x.pw, { exact: true }).fill(PASSWORD);
      await admin.getByRole('button', { name: x.confirm }).click();
      await admin.waitForURL('**done=unlocked**');
      await admin.getByLabel(x.selfRecovery).selectOption('off');
      await admin.getByLabel(x.revoke).selectOption('on');
      await admin.getByRole('button', { name: x.saveRec }).click();
      await admin.waitForURL('**done=recovery**');
      await shotAt(admin, admin.locator('#recovery'), 'admin-settings');
      await shotAt(admin, admin.locator('#recovery h3').nth(1), 'admin-codes-reset');
      await shotAt(admin, admin.locator('#recovery h3').last(), 'admin-history');
      before = mails();
      await admin.getByRole('button', { name: x.issue }).click();
      await admin.locator('ol.codes').waitFor();
      await shot(admin, 'admin-codes');
      await mailShot(await mailAfter(OUTBOX, before, x.subjects.reissued), 'codes-reissued');
      await admin.goto(userPage);
      await admin.getByLabel(x.delivery).selectOption('email');
      await admin.getByRole('button', { name: x.saveRec }).click();
      await admin.waitForURL('**done=recovery**');
      before = mails();
      await admin.getByRole('button', { name: x.issue }).click();
      await admin.waitForURL('**done=codes_mailed**');
      await mailShot(await mailAfter(OUTBOX, before, x.subjects.codes), 'codes-mailed');
      await admin.getByLabel(x.newPw).fill('an admin set this password');
      await admin.getByLabel(x.hint).fill(x.hintText);
      await admin.getByLabel(x.resetTick).check();
      await admin.getByLabel(x.ownPw).fill(PASSWORD);
      before = mails();
      await admin.getByRole('button', { name: x.resetBtn }).click();
      await admin.locator('#enroll-link').waitFor();
      await shot(admin, 'admin-reset-done');
      await mailShot(await mailAfter(OUTBOX, before, x.subjects.wasReset), 'account-reset');
      // A reset by mail follows the recovery policy: self-recovery on again for the next part.
      await admin.goto(userPage);
      await admin.getByLabel(x.selfRecovery).selectOption('on');
      await admin.getByRole('button', { name: x.saveRec }).click();
      await admin.waitForURL('**done=recovery**');
      await actx.close();

      // /reset from the e-mailed link, then the hint at the login.
      const rctx = await browser.newContext({ ...opts, locale: lang });
      const reset = await rctx.newPage();
      await reset.goto(`${BASE}/reset?lang=${lang}`);
      await shot(reset, 'reset-1-request');
      await reset.getByLabel(x.email).fill(`${anna}@example.org`);
      before = mails();
      await reset.getByRole('button', { name: x.sendReset }).click();
      await reset.getByRole('status').waitFor();
      await shot(reset, 'reset-2-sent');
      const resetMail = await mailAfter(OUTBOX, before, x.subjects.reset);
      await mailShot(resetMail, 'reset-link');
      await reset.goto(BASE + pathOf(resetMail.text, '/reset/'));
      await shot(reset, 'reset-3-confirm');
      await reset.getByLabel(x.newPw, { exact: true }).fill('anna starts over now');
      await reset.getByLabel(x.repeatPw).fill('anna starts over now');
      await reset.getByLabel(x.hint).fill(x.hintText);
      await reset.getByRole('button', { name: x.resetConfirm }).click();
      await reset.waitForURL('**/enroll/**');
      await reset.goto(`${BASE}/login?lang=${lang}`);
      await reset.locator('#password-hint').waitFor();
      await shot(reset, 'login-hint');
      await rctx.close();
    }
  }
} finally {
  await browser.close();
}
