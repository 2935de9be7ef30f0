/** problem+json: how the HTTP API presents a kernel AppError, and what anything else thrown becomes. */
import type { Context } from 'koa';
import type { Logger } from '../lib/logger.js';
import { AppError, ERROR_CODES, type ErrorCode, type FieldError } from '../kernel/errors.js';

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: ErrorCode;
  request_id: string;
  details?: FieldError[];
  [extra: string]: unknown;
}

export function problemBody(err: AppError, requestId: string): Problem {
  return {
    type: `/docs#error-${err.code}`,
    title: ERROR_CODES[err.code][1],
    status: err.status,
    detail: err.detail,
    code: err.code,
    request_id: requestId,
    ...(err.extra.details ? { details: err.extra.details } : {}),
    ...err.extra.fields,
  };
}

/** Sets the problem+json response for an AppError on ctx. */
export function renderProblem(ctx: Context, err: AppError): void {
  ctx.status = err.status;
  for (const [k, v] of Object.entries(err.extra.headers ?? {})) ctx.set(k, v);
  ctx.body = problemBody(err, ctx.state.requestId);
  ctx.type = 'application/problem+json';
}

// SQLSTATE classes 08 (connection exception) and 57P (operator intervention: shutdown),
// 53300 (too many connections), 57014 (a statement cancelled: statement_timeout), 25P03 (a
// session ended by idle_in_transaction_session_timeout), plus socket errors.
const UNAVAILABLE_CODES = /^(08...|57P0[1-3]|53300|57014|25P03|ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|ENOTFOUND|EAI_AGAIN|EPIPE)$/;
// pg's own errors carry no code: the socket closed ("Connection terminated", also at its connect
// timeout), a connect attempt that timed out ("timeout expired"), a query the server never
// answered (query_timeout), a client already broken or closed by one of these.
const UNAVAILABLE_MESSAGES = /Connection terminated|connect ECONNREFUSED|timeout expired|Query read timeout|is not queryable/;

/** The database cannot be reached or does not answer in time (as opposed to a query that is wrong). */
export function isDatabaseUnavailable(err: unknown): boolean {
  const e = err as { code?: string; name?: string; message?: string };
  if (!e) return false;
  if (e.name === 'KnexTimeoutError') return true; // no free pooled connection in time
  if (typeof e.code === 'string' && UNAVAILABLE_CODES.test(e.code)) return true;
  return UNAVAILABLE_MESSAGES.test(e.message ?? '');
}

/** Maps anything thrown to an AppError; errors we did not anticipate are logged and hidden. */
export function toAppError(err: unknown, logger: Logger, requestId: string): AppError {
  if (err instanceof AppError) return err;
  const e = err as { status?: number; type?: string; expose?: boolean; message?: string };
  // Errors from the body parser (co-body / raw-body) carry an HTTP status and a type.
  if (e?.status === 413 || e?.type === 'entity.too.large') return new AppError('payload_too_large', 'The request body is larger than 1 MB');
  if (e?.type === 'encoding.unsupported' || e?.status === 415) return new AppError('unsupported_media_type', 'The request body encoding is not supported; send UTF-8 JSON');
  if (e?.status === 400 && (e?.type === 'entity.parse.failed' || /JSON|Unexpected|token/i.test(e.message ?? ''))) {
    return new AppError('invalid_json', 'The request body is not valid JSON');
  }
  if (e?.type === 'request.aborted') return new AppError('bad_request', 'The request was aborted by the client');
  // PostgreSQL "data exception" (22xxx): a value from the request the database cannot take
  // (a malformed timestamp in a cursor, say). Schemas catch these first; this is the backstop.
  if (typeof (e as { code?: string })?.code === 'string' && /^22[0-9A-Z]{3}$/.test((e as { code: string }).code)) {
    logger.warn({ err, request_id: requestId }, 'database refused a value from the request');
    return new AppError('validation_error', 'A value in the request is not valid');
  }
  if (isDatabaseUnavailable(err)) {
    logger.warn({ err, request_id: requestId }, 'database unavailable');
    return new AppError('service_unavailable', 'The service cannot reach its database right now, or it did not answer in time; retry shortly', { headers: { 'Retry-After': '5' } });
  }
  logger.error({ err, request_id: requestId }, 'unhandled error');
  return new AppError('internal_error', 'Something went wrong on our side; the request id helps us find out what');
}
