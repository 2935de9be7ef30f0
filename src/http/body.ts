import { bodyParser } from '@koa/bodyparser';
import type { Middleware } from 'koa';
import { AppError } from '../kernel/errors.js';
import { MAX_JSON_DEPTH, nestsDeeperThan } from './json-depth.js';
import type { AppState } from './route.js';

/**
 * JSON bodies only, at most `limitBytes`; a body of another type is refused, not ignored.
 * Any failure to read the body is the client's (400/413/415), never a 500. A body nesting
 * arrays and objects more than MAX_JSON_DEPTH deep is refused (422) before anything walks it.
 */
export function jsonBody(limitBytes: number): Middleware<AppState> {
  const parse = bodyParser({ enableTypes: ['json'], jsonLimit: limitBytes, encoding: 'utf-8' }) as unknown as Middleware<AppState>;
  return async (ctx, next) => {
    const hasBody = Number(ctx.get('Content-Length') || 0) > 0 || ctx.get('Transfer-Encoding') !== '';
    if (hasBody && !ctx.is('application/json')) {
      throw new AppError('unsupported_media_type', 'Send the request body as JSON with Content-Type: application/json');
    }
    try {
      await parse(ctx, async () => undefined);
    } catch (err) {
      const e = err as { status?: number; type?: string; message?: string };
      if (e.status === 413 || e.type === 'entity.too.large') throw new AppError('payload_too_large', 'The request body is larger than 1 MB');
      if (e.status === 415 || e.type === 'encoding.unsupported') throw new AppError('unsupported_media_type', 'The request body encoding is not supported; send UTF-8 JSON');
      // co-body refuses prototype-poisoning keys (its JSON parser is bourne's, protoAction 'error').
      if (/forbidden prototype property/.test(e.message ?? '')) {
        throw new AppError('validation_error', 'The body has a field named __proto__ (or constructor.prototype), which is never accepted', {
          details: [{ field: 'body', error: 'must not have a field named __proto__ or constructor.prototype' }],
        });
      }
      if (e.type === 'entity.parse.failed' || err instanceof SyntaxError || /JSON|Unexpected token/i.test(e.message ?? '')) {
        throw new AppError('invalid_json', 'The request body is not valid JSON');
      }
      throw new AppError('bad_request', 'The request body could not be read (bad encoding or length)');
    }
    if (nestsDeeperThan(ctx.request.body, MAX_JSON_DEPTH)) {
      throw new AppError('validation_error', `The body nests arrays and objects more than ${MAX_JSON_DEPTH} levels deep; at most ${MAX_JSON_DEPTH} are accepted`, {
        details: [{ field: 'body', error: `must not nest arrays and objects more than ${MAX_JSON_DEPTH} levels deep` }],
      });
    }
    await next();
  };
}
