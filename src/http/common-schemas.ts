import type { IdPrefix } from '../lib/ids.js';

/** `{id}` path parameter of a given id type (ULID after the prefix). */
export const idParams = (prefix: IdPrefix) => ({
  type: 'object',
  required: ['id'],
  additionalProperties: false,
  properties: { id: { type: 'string', pattern: `^${prefix}_[0-9A-HJKMNP-TV-Z]{26}$` } },
}) as const;

export const timestamp = { type: 'string', format: 'date-time' } as const;
export const nullableTimestamp = { type: ['string', 'null'], format: 'date-time' } as const;

export const problemSchema = {
  type: 'object',
  required: ['type', 'title', 'status', 'detail', 'code', 'request_id'],
  properties: {
    type: { type: 'string' },
    title: { type: 'string' },
    status: { type: 'integer' },
    detail: { type: 'string' },
    code: { type: 'string' },
    request_id: { type: 'string' },
    details: {
      type: 'array',
      items: {
        type: 'object',
        required: ['field', 'error'],
        properties: { field: { type: 'string' }, error: { type: 'string' }, received: {} },
      },
    },
  },
} as const;
