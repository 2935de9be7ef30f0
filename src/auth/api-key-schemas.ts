import type { FromSchema } from 'json-schema-to-ts';
import { nullableTimestamp, timestamp } from '../http/common-schemas.js';
import { paginationQueryProperties } from '../http/pagination.js';
import { ALL_SCOPES } from '../kernel/scopes.js';

const scopeList = {
  type: 'array',
  minItems: 1,
  maxItems: 12,
  uniqueItems: true,
  items: { type: 'string', enum: [...ALL_SCOPES, 'all'] },
  description: 'Scopes to grant; `all` grants every scope. A key can only grant scopes it holds itself.',
} as const;

export const apiKeySchema = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'name', 'token_prefix', 'scopes', 'mode', 'workspace_id', 'status', 'rate_limit_per_minute', 'expires_at', 'revoked_at', 'last_used_at', 'rotated_from_id', 'created_at'],
  properties: {
    id: { type: 'string' },
    name: { type: 'string' },
    token_prefix: { type: 'string', description: 'The first characters of the token, for recognising it' },
    scopes: { type: 'array', items: { type: 'string' } },
    mode: { type: 'string', enum: ['live', 'test'] },
    workspace_id: { type: 'string' },
    status: { type: 'string', enum: ['active', 'expired', 'revoked'] },
    rate_limit_per_minute: { type: ['integer', 'null'], description: 'Per-key override; null = the default (600)' },
    expires_at: nullableTimestamp,
    revoked_at: nullableTimestamp,
    last_used_at: { ...nullableTimestamp, description: 'Updated at most once a minute' },
    rotated_from_id: { type: ['string', 'null'] },
    created_at: timestamp,
  },
} as const;

export const apiKeyWithTokenSchema = {
  ...apiKeySchema,
  required: [...apiKeySchema.required, 'token'],
  properties: {
    ...apiKeySchema.properties,
    token: { type: ['string', 'null'], description: 'Shown once: store it now. null on an Idempotency-Key replay, which never returns the secret again' },
  },
} as const;

export const createApiKeyBody = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'scopes'],
  properties: {
    name: { type: 'string', minLength: 1, maxLength: 100 },
    scopes: scopeList,
    expires_at: {
      type: 'string', format: 'date-time',
      description: 'When the key stops working: no later than the calling key\'s expiry (422 otherwise). Omitted: the calling key\'s expiry, or never if it has none',
    },
    rate_limit_per_minute: {
      type: 'integer', minimum: 1, maximum: 100000,
      description: 'At most the calling key\'s own limit (422 otherwise). Omitted: the calling key\'s limit',
    },
  },
} as const;

export const rotateApiKeyBody = {
  type: 'object',
  additionalProperties: false,
  properties: {
    overlap_hours: { type: 'number', minimum: 0, maximum: 168, default: 24, description: 'How long the old key keeps working' },
    expires_at: {
      type: 'string', format: 'date-time',
      description: 'Expiry of the new key: no later than the calling key\'s (422 otherwise). Omitted: the old key\'s, capped at the calling key\'s. The rate limit is the old key\'s, capped at the calling key\'s too',
    },
  },
} as const;

export const listApiKeysQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    ...paginationQueryProperties,
    include_revoked: { type: 'boolean', default: false },
  },
} as const;

export const meSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'name', 'scopes', 'mode', 'expires_at', 'workspace', 'rate_limit'],
  properties: {
    id: { type: 'string' },
    name: { type: 'string' },
    scopes: { type: 'array', items: { type: 'string' } },
    mode: { type: 'string', enum: ['live', 'test'] },
    expires_at: nullableTimestamp,
    workspace: {
      type: 'object',
      additionalProperties: false,
      required: ['id', 'name', 'mode'],
      properties: { id: { type: 'string' }, name: { type: 'string' }, mode: { type: 'string', enum: ['live', 'sandbox'] } },
    },
    rate_limit: {
      type: 'object',
      additionalProperties: false,
      required: ['limit', 'window_seconds'],
      properties: { limit: { type: 'integer' }, window_seconds: { type: 'integer' } },
    },
  },
} as const;

export type ApiKeyJson = FromSchema<typeof apiKeySchema>;
export type CreateApiKeyBody = FromSchema<typeof createApiKeyBody>;
export type RotateApiKeyBody = FromSchema<typeof rotateApiKeyBody>;
