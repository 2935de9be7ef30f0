/**
 * API key tokens: `td_live_` or `td_test_`, 40 random Base62 characters (≈ 238 bits),
 * then a 6-character Base62 CRC32 of everything before it. The checksum lets us (and
 * secret scanners) reject typos and look-alikes without touching the database.
 */
import { createHash, randomBytes } from 'node:crypto';
import { crc32 } from 'node:zlib';

const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const RANDOM_LENGTH = 40;
const CHECKSUM_LENGTH = 6;
const TOKEN_PATTERN = /^td_(live|test)_([0-9A-Za-z]{40})([0-9A-Za-z]{6})$/;

export type KeyMode = 'live' | 'test';

/** Keys of sandbox workspaces are `td_test_…`, of live ones `td_live_…`. */
export function keyModeOf(workspaceMode: 'live' | 'sandbox'): KeyMode {
  return workspaceMode === 'sandbox' ? 'test' : 'live';
}

function base62Random(length: number): string {
  let out = '';
  while (out.length < length) {
    for (const byte of randomBytes(length)) {
      // 248 = 4 × 62: rejecting bytes above it keeps every character equally likely.
      if (byte < 248 && out.length < length) out += ALPHABET[byte % 62];
    }
  }
  return out;
}

function checksum(body: string): string {
  let n = crc32(body);
  let out = '';
  for (let i = 0; i < CHECKSUM_LENGTH; i++) {
    out = ALPHABET[n % 62] + out;
    n = Math.floor(n / 62);
  }
  return out;
}

export interface NewToken {
  token: string;
  /** Non-secret start of the token, safe to show in lists. */
  prefix: string;
  hash: Buffer;
}

export function hashToken(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

export function generateToken(mode: KeyMode): NewToken {
  const body = `td_${mode}_${base62Random(RANDOM_LENGTH)}`;
  const token = body + checksum(body);
  return { token, prefix: token.slice(0, 12), hash: hashToken(token) };
}

/** The token's mode when it is well-formed and its checksum matches, else null. */
export function parseToken(token: string): KeyMode | null {
  const m = TOKEN_PATTERN.exec(token);
  if (!m) return null;
  return checksum(`td_${m[1]}_${m[2]}`) === m[3] ? (m[1] as KeyMode) : null;
}
