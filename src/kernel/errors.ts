/**
 * The domain's errors: a stable `code` (SPEC §4.1) with its HTTP status and title. Services,
 * stores, the Telegram adapter, jobs and MCP throw these; each front end presents them its own
 * way (http/errors.ts renders problem+json).
 */
/** Stable error codes of SPEC §4.1 with their HTTP status and title. */
export const ERROR_CODES = {
  bad_request: [400, 'Bad request'],
  invalid_json: [400, 'Invalid JSON'],
  unauthorized: [401, 'Unauthorized'],
  forbidden: [403, 'Forbidden'],
  not_found: [404, 'Not found'],
  method_not_allowed: [405, 'Method not allowed'],
  conflict: [409, 'Conflict'],
  invalid_transition: [409, 'Invalid status transition'],
  no_agent_available: [409, 'No agent available'],
  idempotency_key_reused: [409, 'Idempotency key reused'],
  idempotency_key_in_progress: [409, 'Idempotency key in progress'],
  payload_too_large: [413, 'Payload too large'],
  unsupported_media_type: [415, 'Unsupported media type'],
  validation_error: [422, 'Validation error'],
  recipient_unreachable: [422, 'Recipient unreachable'],
  rate_limit_exceeded: [429, 'Rate limit exceeded'],
  daily_send_limit_exceeded: [429, 'Daily send limit exceeded'],
  internal_error: [500, 'Internal error'],
  service_unavailable: [503, 'Service unavailable'],
  telegram_unavailable: [503, 'Telegram unavailable'],
} as const satisfies Record<string, readonly [number, string]>;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface FieldError {
  field: string;
  error: string;
  received?: unknown;
}

/** A failure a client can act on. Services throw these; one middleware renders them. */
export class AppError extends Error {
  readonly status: number;
  constructor(
    readonly code: ErrorCode,
    readonly detail: string,
    readonly extra: { details?: FieldError[]; headers?: Record<string, string>; fields?: Record<string, unknown>; status?: number } = {},
  ) {
    super(detail);
    this.status = extra.status ?? ERROR_CODES[code][0];
  }
}

export const notFound = (what: string) => new AppError('not_found', `${what} not found`);
