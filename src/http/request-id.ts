import { randomFillSync } from 'node:crypto';
import type { Middleware } from 'koa';
import { monotonicFactory } from 'ulid';

const SANE_REQUEST_ID = /^[A-Za-z0-9._:-]{8,128}$/;

/**
 * ulid's own generator asks the system for one random byte per character (16 calls for a new
 * millisecond): on every request that showed in profiles. Ours draws from a buffer refilled
 * 4 KiB at a time; ids look the same (`req_` + a monotonic ULID). Not a secret, only unique.
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

/** Honours a client's X-Request-Id when it is sane, otherwise makes one; echoes it on every response. */
export function requestId(): Middleware {
  return async (ctx, next) => {
    const given = ctx.get('X-Request-Id');
    ctx.state.requestId = SANE_REQUEST_ID.test(given) ? given : `req_${ulid()}`;
    ctx.set('X-Request-Id', ctx.state.requestId);
    await next();
  };
}
