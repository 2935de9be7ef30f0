/**
 * Webhook secrets and signatures (SPEC §7). Two schemes on every delivery:
 * - `X-Signature: sha256=<hex HMAC-SHA256(secret as UTF-8, raw body)>` (GitHub style);
 * - Standard Webhooks: `webhook-signature: v1,<base64 HMAC-SHA256(key, "id.timestamp.body")>`,
 *   the key being the bytes after `whsec_` (base64), else the secret's UTF-8 bytes.
 * While a rotated-out secret still signs, webhook-signature lists both (space-separated,
 * newest first, as Standard Webhooks defines); X-Signature keeps its single-value format with
 * the current secret and the old one's goes in X-Signature-Previous.
 */
import { createHmac, randomBytes } from 'node:crypto';

export const SECRET_PREFIX = 'whsec_';

/** `whsec_` + base64 of 32 random bytes. */
export function generateSecret(): string {
  return SECRET_PREFIX + randomBytes(32).toString('base64');
}

/** Why a secret given by an integrator cannot be used, or null when it can. */
export function secretProblem(secret: string): string | null {
  if (secret.startsWith(SECRET_PREFIX)) {
    const encoded = secret.slice(SECRET_PREFIX.length);
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(encoded) || encoded.length % 4 !== 0) return 'after whsec_ must come standard base64';
    const bytes = Buffer.from(encoded, 'base64').length;
    if (bytes < 24 || bytes > 64) return `a whsec_ secret must hold 24-64 bytes; this one holds ${bytes}`;
    return null;
  }
  if (!/^[\x21-\x7e]{24,128}$/.test(secret)) {
    return 'must be whsec_ + base64 of 24-64 bytes, or 24-128 printable ASCII characters without spaces';
  }
  return null;
}

function standardKey(secret: string): Buffer {
  return secret.startsWith(SECRET_PREFIX) ? Buffer.from(secret.slice(SECRET_PREFIX.length), 'base64') : Buffer.from(secret, 'utf8');
}

export interface SignedMessage {
  /** The event id: the receiver's deduplication key, the same on every retry and replay. */
  id: string;
  /** Unix seconds of this attempt. */
  timestamp: number;
  /** The raw body, exactly as sent. */
  body: string;
}

/** The signature headers for a message, signed with each of `secrets` (the current one first). */
export function signatureHeaders(secrets: readonly string[], m: SignedMessage): Record<string, string> {
  if (secrets.length === 0) throw new Error('signatureHeaders: no secret to sign with');
  const signed = `${m.id}.${m.timestamp}.${m.body}`;
  const hex = (secret: string) => `sha256=${createHmac('sha256', secret).update(m.body).digest('hex')}`;
  return {
    'x-signature': hex(secrets[0]),
    ...(secrets[1] ? { 'x-signature-previous': hex(secrets[1]) } : {}),
    'webhook-id': m.id,
    'webhook-timestamp': String(m.timestamp),
    'webhook-signature': secrets.map((s) => `v1,${createHmac('sha256', standardKey(s)).update(signed).digest('base64')}`).join(' '),
  };
}
