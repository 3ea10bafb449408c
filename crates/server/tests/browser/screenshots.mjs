// Screenshots of the login, portal and admin pages, in English and German, at desktop
// (1280x900) and phone (390x844) size. Documentation, not a test: scripts/web-screenshots.sh
// starts a server and runs this with BASE, BIN (the tessera binary), DATA (its data dir), OUT.
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { chromium } from 'playwright-core';

const { BASE, BIN, DATA, OUT } = process.env;
const PASSWORD = 'a long demo password';
const tessera = (args, input) =>
  execFileSync(BIN, ['--data-dir', DATA, ...args], { input, encoding: 'utf8' });
const oathtool = (secret) => execFileSync('oathtool', ['--totp', '-b', secret], { encoding: 'utf8' }).trim();

const sizes = {
  desktop: { viewport: { width: 1280, height: 900 }, userAgent: 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36' },
  phone: { viewport: { width: 390, height: 844 }, userAgent: 'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Chrome/131.0 Mobile Safari/537.36', isMobile: true },
};
const texts = {
  en: { signin: 'Sign in', user: 'Username', pw: 'Password', remove: 'Remove', confirm: 'Confirm', codes: 'Create new recovery codes', save: 'Save', otp: 'One-time password (OTP) required', phone: 'Phone number', register: 'Register', name: 'Anna Smith' },
  de: { signin: 'Anmelden', user: 'Benutzername', pw: 'Passwort', remove: 'Entfernen', confirm: 'Bestätigen', codes: 'Neue Wiederherstellungscodes erzeugen', save: 'Speichern', otp: 'Einmalpasswort (OTP) erforderlich', phone: 'Telefonnummer', register: 'Registrieren', name: 'Anna Schmidt' },
};

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync', '--hide-scrollbars'],
});
for (const area of ['login', 'portal', 'admin']) mkdirSync(`${OUT}/${area}`, { recursive: true });
try {
  for (const [lang, x] of Object.entries(texts)) {
    for (const [size, opts] of Object.entries(sizes)) {
      const tag = `${lang}-${size}`;
      const shot = async (page, area, name) => {
        await page.screenshot({ path: `${OUT}/${area}/${name}-${tag}.png`, fullPage: true });
        console.log(`${OUT}/${area}/${name}-${tag}.png`);
      };
      const alice = `anna-${tag}`;
      const root = `admin-${tag}`;
      const bob = `bob-${tag}`;
      tessera(['user', 'add', alice, '--display-name', x.name, '--email', `${alice}@example.org`, '--language', lang, '--password-stdin'], `${PASSWORD}\n`);
      tessera(['user', 'add', root, '--display-name', 'IT', '--language', lang, '--admin', '--password-stdin'], `${PASSWORD}\n`);
      tessera(['user', 'add', bob, '--display-name', 'Bob Beispiel', '--email', `${bob}@example.org`, '--phone', '+49 30 1234567', '--language', lang]);

      const ctx = await browser.newContext({ ...opts, locale: lang });
      const page = await ctx.newPage();
      const login = async (name, password) => {
        await page.goto(`${BASE}/login?lang=${lang}`);
        await page.getByLabel(x.user).fill(name);
        await page.getByLabel(x.pw, { exact: true }).fill(password);
        await page.getByRole('button', { name: x.signin }).click();
      };
      await page.goto(`${BASE}/login?lang=${lang}`);
      await shot(page, 'login', 'login');
      await login(alice, 'wrong password');
      await shot(page, 'login', 'failed');

      // The portal, with two devices added and activated by the operator.
      await login(alice, PASSWORD);
      await page.waitForURL('**/portal');
      for (const device of ['Diensthandy', 'Tablet']) {
        const t = JSON.parse(tessera(['--json', 'token', 'add', alice, '--name', device]));
        const secret = new URL(t.otpauth_uri).searchParams.get('secret');
        tessera(['token', 'verify', String(t.id), oathtool(secret)]);
      }
      await page.goto(`${BASE}/portal`);
      await shot(page, 'portal', 'portal');
      await page.locator('li.device', { hasText: 'Tablet' }).getByRole('button', { name: x.remove }).click();
      await shot(page, 'portal', 'reauth');
      await page.getByLabel(x.pw).fill(PASSWORD);
      await page.getByRole('button', { name: x.confirm }).click();
      await page.waitForURL('**/portal?done=removed');
      await shot(page, 'portal', 'removed');
      await page.getByRole('button', { name: x.codes }).click();
      await page.locator('ol.codes').waitFor();
      await shot(page, 'portal', 'codes');
      await page.goto(`${BASE}/admin`);
      await shot(page, 'portal', 'forbidden');
      await ctx.close();

      // The admin area.
      const actx = await browser.newContext({ ...opts, locale: lang });
      const apage = await actx.newPage();
      const alogin = async () => {
        await apage.goto(`${BASE}/login?lang=${lang}`);
        await apage.getByLabel(x.user).fill(root);
        await apage.getByLabel(x.pw, { exact: true }).fill(PASSWORD);
        await apage.getByRole('button', { name: x.signin }).click();
        await apage.waitForURL('**/portal');
      };
      await alogin();
      await apage.goto(`${BASE}/admin?q=${tag}`);
      await shot(apage, 'admin', 'users');
      await apage.goto(`${BASE}/admin/users/${bob}`);
      await shot(apage, 'admin', 'user');
      await apage.getByLabel(x.otp).check();
      await apage.getByLabel(x.phone).fill('');
      await apage.getByRole('button', { name: x.save, exact: true }).click();
      await apage.getByLabel(x.pw).waitFor();
      await shot(apage, 'admin', 'reauth');
      await apage.getByLabel(x.pw).fill(PASSWORD);
      await apage.getByRole('button', { name: x.confirm }).click();
      await apage.waitForURL('**/admin/users/**?done=saved*');
      await shot(apage, 'admin', 'user-saved');
      await apage.goto(`${BASE}/admin/audit?user=${bob}`);
      await shot(apage, 'admin', 'audit');
      await apage.goto(`${BASE}/admin/apps`);
      await apage.locator('#app-name').fill(`vpn-${tag}`);
      await apage.getByRole('button', { name: x.register }).click();
      await apage.locator('#new-key').waitFor();
      await shot(apage, 'admin', 'apps-key');
      await actx.close();
    }
  }
} finally {
  await browser.close();
}
