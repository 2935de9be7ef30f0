import type { Middleware } from 'koa';
import { newId } from '../lib/ids.js';

const SANE_REQUEST_ID = /^[A-Za-z0-9._:-]{8,128}$/;

/** Honours a client's X-Request-Id when it is sane, otherwise makes one; echoes it on every response. */
export function requestId(): Middleware {
  return async (ctx, next) => {
    const given = ctx.get('X-Request-Id');
    ctx.state.requestId = SANE_REQUEST_ID.test(given) ? given : newId('req');
    ctx.set('X-Request-Id', ctx.state.requestId);
    await next();
  };
}
