import type { IdPrefix } from '../lib/ids.js';

/** A body field holding the id of another resource of the workspace (an unknown id is a 404). */
export const idRef = (prefix: IdPrefix) => ({ type: 'string', pattern: `^${prefix}_[0-9A-HJKMNP-TV-Z]{26}$` }) as const;

/** `{id}` path parameter of a given id type (ULID after the prefix). */
export const idParams = (prefix: IdPrefix) => ({
  type: 'object',
  required: ['id'],
  additionalProperties: false,
  properties: { id: idRef(prefix) },
}) as const;

/** A query value naming one or more of `values`, comma-separated (`status=open,resolved`). */
export const commaList = (values: readonly string[]) => ({
  type: 'string',
  pattern: `^(${values.join('|')})(,(${values.join('|')}))*$`,
  description: `One or more of ${values.join(', ')}, comma-separated`,
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

/** Tags are compared case-insensitively: stored trimmed and lower-cased, no spaces or commas. */
export const tagSchema = { type: 'string', minLength: 1, maxLength: 64, pattern: '^\\s*[^\\s,]+\\s*$', examples: ['vip'], description: 'One word: no spaces or commas' } as const;
export const tagsSchema = { type: 'array', maxItems: 50, items: tagSchema } as const;

/**
 * Free-form fields an integrator attaches: flat, scalar values. In a PATCH a null value
 * removes the field.
 */
export const customFieldsSchema = {
  type: 'object',
  maxProperties: 50,
  propertyNames: { pattern: '^[a-z][a-z0-9_]{0,63}$', examples: ['order_id'], description: 'a-z, 0-9 and _, starting with a letter, at most 64' },
  additionalProperties: { type: ['string', 'number', 'boolean', 'null'], maxLength: 2000 },
} as const;
export const customFieldsOutSchema = { type: 'object', additionalProperties: { type: ['string', 'number', 'boolean'] } } as const;
