/**
 * Webhook secrets and signatures (SPEC §7; src/webhooks/webhook-signing.ts), checked against
 * HMACs computed here with node:crypto from the spec's wording, and cross-checked with the
 * `standardwebhooks` package as a third-party verifier.
 */
import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { generateSecret, SECRET_PREFIX, secretProblem, signatureHeaders } from '../../src/webhooks/webhook-signing.js';

/** SPEC §7 written out independently: X-Signature is HMAC-SHA256(secret as UTF-8, raw body) in hex. */
function expectedXSignature(secret: string, body: string): string {
  return createHmac('sha256', Buffer.from(secret, 'utf8')).update(Buffer.from(body, 'utf8')).digest('hex');
}

/** Standard Webhooks: base64 HMAC-SHA256 of "id.timestamp.body", keyed by the base64 after whsec_ (else the UTF-8 bytes). */
function expectedStandardSignature(secret: string, id: string, timestamp: number, body: string): string {
  const key = secret.startsWith('whsec_') ? Buffer.from(secret.slice('whsec_'.length), 'base64') : Buffer.from(secret, 'utf8');
  return createHmac('sha256', key).update(Buffer.from(`${id}.${timestamp}.${body}`, 'utf8')).digest('base64');
}

const whsec = (bytes: number) => `whsec_${randomBytes(bytes).toString('base64')}`;
const nowSeconds = () => Math.floor(Date.now() / 1000);

/** A body with non-ASCII text, so a Latin-1 or UTF-16 slip in the HMAC input shows. */
const BODY = JSON.stringify({
  id: 'evt_01JD0000000000000000000000', event: 'ticket.created', created_at: '2026-11-21T12:00:00.000Z',
  workspace_id: 'ws_default', data: { subject: 'Zahlung fehlgeschlagen — ça ne marche pas 🙁', tags: ['billing'] },
});
const ID = 'evt_01JD0000000000000000000000';

describe('webhook signing (SPEC §7)', () => {
  describe('generateSecret', () => {
    it('is whsec_ + standard base64 of exactly 32 bytes, and passes its own check', () => {
      const s = generateSecret();
      assert.equal(SECRET_PREFIX, 'whsec_');
      assert.match(s, /^whsec_[A-Za-z0-9+/]{43}=$/);
      const bytes = Buffer.from(s.slice(6), 'base64');
      assert.equal(bytes.length, 32);
      assert.equal(bytes.toString('base64'), s.slice(6), 'canonical base64 (decodes and re-encodes to itself)');
      assert.equal(secretProblem(s), null);
    });

    it('is random: 200 secrets are all different and their bytes are spread out', () => {
      const secrets = Array.from({ length: 200 }, generateSecret);
      assert.equal(new Set(secrets).size, 200);
      // 6400 random bytes: every byte value should turn up (the chance one is missing is ~1e-9 per value).
      const seen = new Set<number>();
      for (const s of secrets) for (const b of Buffer.from(s.slice(6), 'base64')) seen.add(b);
      assert.ok(seen.size > 250, `only ${seen.size} distinct byte values in 6400 bytes`);
      // No fixed byte position (a counter, a constant prefix).
      for (let i = 0; i < 32; i++) {
        const atI = new Set(secrets.map((s) => Buffer.from(s.slice(6), 'base64')[i]));
        assert.ok(atI.size > 50, `byte ${i} takes only ${atI.size} values over 200 secrets`);
      }
    });
  });

  describe('secretProblem', () => {
    const good: Array<[string, string]> = [
      ['whsec_ + base64 of 24 bytes (the minimum)', whsec(24)],
      ['whsec_ + base64 of 32 bytes', whsec(32)],
      ['whsec_ + base64 of 64 bytes (the maximum)', whsec(64)],
      ['whsec_ + base64 with one = of padding (managed secrets, 26 bytes)', whsec(26)],
      ['24 printable ASCII characters (the minimum)', 'abcdefghijklmnopqrstuvwx'],
      ['128 printable ASCII characters (the maximum)', 'k'.repeat(128)],
      ['punctuation and symbols of printable ASCII', '!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~AZaz09'],
      ['a GitHub-style hex secret', randomBytes(20).toString('hex')],
    ];
    for (const [what, secret] of good) {
      it(`accepts ${what}`, () => assert.equal(secretProblem(secret), null));
    }

    const bad: Array<[string, string, RegExp]> = [
      ['whsec_ + base64 of 23 bytes (one short)', whsec(23), /24-64 bytes; this one holds 23/],
      ['whsec_ + base64 of 65 bytes (one over)', whsec(65), /24-64 bytes; this one holds 65/],
      ['whsec_ with nothing after it', 'whsec_', /standard base64/],
      ['whsec_ + URL-safe base64 (- and _)', 'whsec_' + 'ab-_'.repeat(10), /standard base64/],
      ['whsec_ + base64 without its padding', 'whsec_' + randomBytes(32).toString('base64').replace(/=+$/, ''), /standard base64/],
      ['whsec_ + base64 with a space in it', `whsec_${randomBytes(16).toString('base64')} ${randomBytes(15).toString('base64')}`, /standard base64/],
      ['whsec_ + text that is not base64', 'whsec_this-is-not-base64-at-all!!', /standard base64/],
      ['23 printable characters (one short)', 'abcdefghijklmnopqrstuvw', /24-128 printable ASCII/],
      ['129 printable characters (one over)', 'k'.repeat(129), /24-128 printable ASCII/],
      ['a space inside', 'abcdefghijkl mnopqrstuvwxyz', /without spaces/],
      ['a tab inside', 'abcdefghijkl\tmnopqrstuvwxyz', /24-128 printable ASCII/],
      ['a newline at the end', 'abcdefghijklmnopqrstuvwxyz\n', /24-128 printable ASCII/],
      ['non-ASCII letters', 'ççççççççççççççççççççççççç', /24-128 printable ASCII/],
      ['an emoji', '🔑'.repeat(24), /24-128 printable ASCII/],
      ['the empty string', '', /24-128 printable ASCII/],
    ];
    for (const [what, secret, message] of bad) {
      it(`refuses ${what}`, () => {
        const problem = secretProblem(secret);
        assert.ok(problem, 'a problem is reported');
        assert.match(problem, message);
        if (secret.length >= 8) assert.ok(!problem.includes(secret), 'the message never echoes the secret');
      });
    }
  });

  describe('signatureHeaders', () => {
    it('signs with a whsec_ secret: X-Signature over the body with the UTF-8 secret, webhook-signature with the decoded key', () => {
      const secret = whsec(32);
      const ts = 1_795_262_400;
      const h = signatureHeaders([secret], { id: ID, timestamp: ts, body: BODY });
      assert.deepEqual(Object.keys(h).sort(), ['webhook-id', 'webhook-signature', 'webhook-timestamp', 'x-signature']);
      assert.equal(h['x-signature'], `sha256=${expectedXSignature(secret, BODY)}`);
      assert.match(h['x-signature'], /^sha256=[0-9a-f]{64}$/);
      assert.equal(h['webhook-id'], ID);
      assert.equal(h['webhook-timestamp'], '1795262400');
      assert.equal(h['webhook-signature'], `v1,${expectedStandardSignature(secret, ID, ts, BODY)}`);
      assert.match(h['webhook-signature'], /^v1,[A-Za-z0-9+/]{43}=$/);
    });

    it('signs with a plain secret: both schemes key on its UTF-8 bytes', () => {
      const secret = 'my-plain-secret-with-24+chars!';
      const ts = 1_700_000_000;
      const h = signatureHeaders([secret], { id: ID, timestamp: ts, body: BODY });
      assert.equal(h['x-signature'], `sha256=${expectedXSignature(secret, BODY)}`);
      assert.equal(h['webhook-signature'], `v1,${expectedStandardSignature(secret, ID, ts, BODY)}`);
      // Known-answer: the same HMAC written out once more with the key as raw bytes.
      const raw = createHmac('sha256', Buffer.from('my-plain-secret-with-24+chars!', 'ascii')).update(`${ID}.1700000000.${BODY}`, 'utf8').digest('base64');
      assert.equal(h['webhook-signature'], `v1,${raw}`);
    });

    it('the whsec_ key is the decoded bytes, not the text: signing with the text gives another signature', () => {
      const secret = whsec(32);
      const h = signatureHeaders([secret], { id: ID, timestamp: 1, body: BODY });
      const withText = createHmac('sha256', Buffer.from(secret, 'utf8')).update(`${ID}.1.${BODY}`).digest('base64');
      assert.notEqual(h['webhook-signature'], `v1,${withText}`);
      // …while X-Signature does use the text (as the seed documents).
      assert.equal(h['x-signature'], `sha256=${createHmac('sha256', secret).update(BODY).digest('hex')}`);
    });

    it('every input counts: another body, id, timestamp or secret changes the signatures', () => {
      const secret = whsec(32);
      const base = signatureHeaders([secret], { id: ID, timestamp: 100, body: BODY });
      const variants = [
        signatureHeaders([secret], { id: ID, timestamp: 100, body: BODY.replace('billing', 'Billing') }),
        signatureHeaders([secret], { id: 'evt_01JD0000000000000000000001', timestamp: 100, body: BODY }),
        signatureHeaders([secret], { id: ID, timestamp: 101, body: BODY }),
        signatureHeaders([whsec(32)], { id: ID, timestamp: 100, body: BODY }),
      ];
      for (const v of variants) assert.notEqual(v['webhook-signature'], base['webhook-signature']);
      // X-Signature covers the body only (and the secret).
      assert.notEqual(variants[0]['x-signature'], base['x-signature']);
      assert.equal(variants[1]['x-signature'], base['x-signature']);
      assert.equal(variants[2]['x-signature'], base['x-signature']);
      assert.notEqual(variants[3]['x-signature'], base['x-signature']);
    });

    it('is verified by the standardwebhooks package, which also produces the same v1 signature', () => {
      const secret = generateSecret();
      const ts = nowSeconds();
      const h = signatureHeaders([secret], { id: ID, timestamp: ts, body: BODY });
      const wh = new Webhook(secret);
      assert.deepEqual(wh.verify(BODY, h), JSON.parse(BODY));
      assert.equal(wh.sign(ID, new Date(ts * 1000), BODY), h['webhook-signature']);
    });

    it('a plain secret verifies with standardwebhooks given its raw bytes', () => {
      const secret = 'a-plain-secret-of-32-characters!';
      const ts = nowSeconds();
      const h = signatureHeaders([secret], { id: ID, timestamp: ts, body: BODY });
      assert.deepEqual(new Webhook(secret, { format: 'raw' }).verify(BODY, h), JSON.parse(BODY));
    });

    it('standardwebhooks rejects a tampered body, another id, a wrong secret and a timestamp over 5 minutes off', () => {
      const secret = generateSecret();
      const ts = nowSeconds();
      const h = signatureHeaders([secret], { id: ID, timestamp: ts, body: BODY });
      const wh = new Webhook(secret);
      assert.throws(() => wh.verify(BODY.replace('billing', 'b1lling'), h), /No matching signature/);
      assert.throws(() => wh.verify(BODY, { ...h, 'webhook-id': 'evt_other' }), /No matching signature/);
      assert.throws(() => new Webhook(generateSecret()).verify(BODY, h), /No matching signature/);
      const old = signatureHeaders([secret], { id: ID, timestamp: ts - 6 * 60, body: BODY });
      assert.throws(() => wh.verify(BODY, old), /too old/);
      const future = signatureHeaders([secret], { id: ID, timestamp: ts + 6 * 60, body: BODY });
      assert.throws(() => wh.verify(BODY, future), /too new/);
    });

    it('with two secrets (a rotation overlap): X-Signature with the new one and X-Signature-Previous with the old; webhook-signature lists both, new first', () => {
      const next = generateSecret();
      const previous = 'the-previous-plain-secret-0123456789';
      const ts = nowSeconds();
      const h = signatureHeaders([next, previous], { id: ID, timestamp: ts, body: BODY });
      assert.equal(h['x-signature'], `sha256=${expectedXSignature(next, BODY)}`);
      assert.equal(h['x-signature-previous'], `sha256=${expectedXSignature(previous, BODY)}`);
      assert.equal(h['webhook-signature'],
        `v1,${expectedStandardSignature(next, ID, ts, BODY)} v1,${expectedStandardSignature(previous, ID, ts, BODY)}`);
      // A receiver still on the old secret and one already on the new both verify.
      assert.doesNotThrow(() => new Webhook(next).verify(BODY, h));
      assert.doesNotThrow(() => new Webhook(previous, { format: 'raw' }).verify(BODY, h));
      assert.throws(() => new Webhook(generateSecret()).verify(BODY, h), /No matching signature/);
      // The order matters to integrators reading the first entry: swapping the secrets swaps the entries.
      const swapped = signatureHeaders([previous, next], { id: ID, timestamp: ts, body: BODY });
      assert.equal(swapped['x-signature'], h['x-signature-previous']);
      assert.equal(swapped['x-signature-previous'], h['x-signature']);
      assert.equal(swapped['webhook-signature'], h['webhook-signature'].split(' ').reverse().join(' '));
    });

    it('X-Signature keeps the exact sha256=<hex> format during an overlap (a GitHub-style receiver on the new secret compares it whole)', () => {
      const next = generateSecret();
      const previous = generateSecret();
      const h = signatureHeaders([next, previous], { id: ID, timestamp: 5, body: BODY });
      assert.match(h['x-signature'], /^sha256=[0-9a-f]{64}$/);
      assert.equal(h['x-signature'], `sha256=${createHmac('sha256', next).update(BODY, 'utf8').digest('hex')}`);
      assert.equal(h['x-signature-previous'], `sha256=${createHmac('sha256', previous).update(BODY, 'utf8').digest('hex')}`);
      assert.equal(signatureHeaders([next], { id: ID, timestamp: 5, body: BODY })['x-signature-previous'], undefined);
    });

    it('an empty body and an empty-object body are signed too', () => {
      const secret = generateSecret();
      for (const body of ['', '{}']) {
        const h = signatureHeaders([secret], { id: ID, timestamp: 42, body });
        assert.equal(h['x-signature'], `sha256=${expectedXSignature(secret, body)}`);
        assert.equal(h['webhook-signature'], `v1,${expectedStandardSignature(secret, ID, 42, body)}`);
      }
    });

    it('throws without any secret rather than sending unsigned', () => {
      assert.throws(() => signatureHeaders([], { id: ID, timestamp: 1, body: BODY }), /no secret/);
    });
  });
});
