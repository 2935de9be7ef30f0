import { bodyParser } from '@koa/bodyparser';
import type { Middleware } from 'koa';
import { AppError } from './errors.js';
import type { AppState } from './route.js';

/** JSON bodies only, at most `limitBytes`; a body of another type is refused, not ignored. */
export function jsonBody(limitBytes: number): Middleware<AppState> {
  const parse = bodyParser({ enableTypes: ['json'], jsonLimit: limitBytes, encoding: 'utf-8' }) as unknown as Middleware<AppState>;
  return async (ctx, next) => {
    const hasBody = Number(ctx.get('Content-Length') || 0) > 0 || ctx.get('Transfer-Encoding') !== '';
    if (hasBody && !ctx.is('application/json', 'application/*+json')) {
      throw new AppError('unsupported_media_type', 'Send the request body as JSON with Content-Type: application/json');
    }
    await parse(ctx, next);
  };
}
