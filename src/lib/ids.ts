import { randomFillSync } from 'node:crypto';
import { monotonicFactory } from 'ulid';

/**
 * ulid's own generator asks the system for one random byte per character (16 calls for a new
 * millisecond), which showed in the create path's profile (a create makes three ids). Ours
 * draws from a buffer of the same cryptographic source refilled 4 KiB at a time: the same
 * monotonic ULIDs, exactly as unpredictable as before.
 */
const randomBytes = new Uint8Array(4096);
let used = randomBytes.length;
const ulid = monotonicFactory(() => {
  if (used === randomBytes.length) {
    randomFillSync(randomBytes);
    used = 0;
  }
  return randomBytes[used++] / 256;
});

/** Public id prefixes, one per resource type (SPEC §2). */
export type IdPrefix =
  | 'ws' | 'acc' | 'key' | 'ag' | 'team' | 'ct' | 'tkt' | 'msg' | 'cr'
  | 'sla' | 'esc' | 'whk' | 'evt' | 'dlv' | 'req';

/** A new opaque, time-ordered id such as `key_01JD3…`. */
export function newId(prefix: IdPrefix): string {
  return `${prefix}_${ulid()}`;
}
