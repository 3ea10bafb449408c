// What the browser scripts share: RFC 6238 codes, one line per checked step, Debian's chromium
// started headless, and the mails a test server wrote to its outbox (read with Python's email
// package, which decodes what the mail encodings hide).
import { createHmac } from 'node:crypto';
import { execFileSync } from 'node:child_process';

export function base32(text) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const c of text.replace(/[\s=]/g, '').toUpperCase()) {
    const v = alphabet.indexOf(c);
    if (v < 0) throw new Error('not base32');
    bits += v.toString(2).padStart(5, '0');
  }
  const bytes = [];
  for (let i = 0; i + 8 <= bits.length; i += 8) bytes.push(parseInt(bits.slice(i, i + 8), 2));
  return Buffer.from(bytes);
}

// RFC 6238 with the defaults Tessera issues: SHA-1, 6 digits, 30 s.
export function totp(secret, time) {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(time / 30)));
  const mac = createHmac('sha1', base32(secret)).update(counter).digest();
  const offset = mac[mac.length - 1] & 0xf;
  const value = (mac.readUInt32BE(offset) & 0x7fffffff) % 1_000_000;
  return String(value).padStart(6, '0');
}

export function expect(condition, what) {
  if (!condition) throw new Error(`expected: ${what}`);
  console.log(`ok - ${what}`);
}

export async function launch(chromium) {
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--hide-scrollbars'],
  });
}

const READ_OUTBOX = `
import email, email.policy, json, os, sys
d = sys.argv[1]
names = sorted((f for f in os.listdir(d) if f.endswith('.eml')) if os.path.isdir(d) else [],
               key=lambda f: os.path.getmtime(os.path.join(d, f)))
out = []
for f in names:
    with open(os.path.join(d, f), 'rb') as fh:
        m = email.message_from_binary_file(fh, policy=email.policy.default)
    text = m.get_body(('plain',))
    html = m.get_body(('html',))
    out.append({'subject': str(m['subject']), 'to': str(m['to']),
                'text': text.get_content() if text else '',
                'html': html.get_content() if html else ''})
print(json.dumps(out))
`;

// The mails in the outbox directory, oldest first: {subject, to, text, html}.
export function outbox(dir) {
  return JSON.parse(execFileSync('python3', ['-c', READ_OUTBOX, dir], { encoding: 'utf8' }));
}

// Waits for the first mail with this subject after the first `after` mails.
export async function mailAfter(dir, after, subject) {
  for (let i = 0; i < 200; i++) {
    const found = outbox(dir).slice(after).find((m) => m.subject === subject);
    if (found) return found;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`no mail "${subject}" in ${dir}`);
}
