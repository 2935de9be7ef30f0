import type { FromSchema } from 'json-schema-to-ts';
import { EVENT_TYPES } from '../events/event-types.js';
import { commaList, nullableTimestamp, timestamp } from '../http/common-schemas.js';
import { paginationQueryProperties } from '../http/pagination.js';

export const DELIVERY_STATUSES = ['pending', 'failed', 'succeeded', 'dead'] as const;
export type DeliveryStatus = (typeof DELIVERY_STATUSES)[number];

const url = { type: 'string', minLength: 1, maxLength: 2000, description: 'Where deliveries are POSTed (https)' } as const;
const events = {
  type: 'array',
  minItems: 1,
  maxItems: 100,
  items: { type: 'string', enum: ['*', ...EVENT_TYPES] },
  description: 'Event names, or ["*"] for every event',
} as const;
const description = { type: ['string', 'null'], maxLength: 500 } as const;
const secret = {
  type: 'string',
  minLength: 1,
  maxLength: 200,
  description: 'whsec_ + base64 of 24-64 bytes, or 24-128 printable characters; generated when absent',
} as const;

export const webhookSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'url', 'events', 'description', 'enabled', 'disabled_reason', 'disabled_at', 'failing_since',
    'previous_secret_expires_at', 'created_at', 'updated_at'],
  properties: {
    id: { type: 'string' },
    url: { type: 'string' },
    events: { type: 'array', items: { type: 'string' } },
    description: { type: ['string', 'null'] },
    enabled: { type: 'boolean' },
    disabled_reason: { type: ['string', 'null'], description: 'Why deliveries stopped: 410 Gone, continuous failure, or the API' },
    disabled_at: nullableTimestamp,
    failing_since: { ...nullableTimestamp, description: 'Every attempt since this time has failed' },
    previous_secret_expires_at: { ...nullableTimestamp, description: 'Until then the rotated-out secret signs too' },
    created_at: timestamp,
    updated_at: timestamp,
  },
} as const;

/** Create and rotate answer with the secret: the only times it is shown. */
export const webhookWithSecretSchema = {
  ...webhookSchema,
  required: [...webhookSchema.required, 'secret'],
  properties: { ...webhookSchema.properties, secret: { type: ['string', 'null'], description: 'Shown here only (null in an Idempotency-Key replay)' } },
} as const;

export const createWebhookBody = {
  type: 'object',
  additionalProperties: false,
  required: ['url', 'events'],
  properties: { url, events, description, enabled: { type: 'boolean', default: true }, secret },
} as const;

export const patchWebhookBody = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  properties: { url, events, description, enabled: { type: 'boolean', description: 'true also resumes the deliveries held while disabled' } },
} as const;

export const rotateSecretBody = {
  type: 'object',
  additionalProperties: false,
  properties: { secret },
} as const;

export const listWebhooksQuery = {
  type: 'object',
  additionalProperties: false,
  properties: { ...paginationQueryProperties, enabled: { type: 'boolean' } },
} as const;

const attemptSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['at', 'status_code', 'duration_ms', 'error', 'response_excerpt'],
  properties: {
    at: timestamp,
    status_code: { type: ['integer', 'null'] },
    duration_ms: { type: ['integer', 'null'] },
    error: { type: ['string', 'null'] },
    response_excerpt: { type: ['string', 'null'], description: 'The start of the answer (at most 1 KB)' },
  },
} as const;

export const deliverySchema = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'event_id', 'event', 'endpoint_id', 'status', 'attempts', 'next_attempt_at', 'created_at'],
  properties: {
    id: { type: 'string' },
    event_id: { type: 'string', description: 'Also the webhook-id header: the same on every retry and replay' },
    event: { type: 'string' },
    endpoint_id: { type: 'string' },
    status: { type: 'string', enum: DELIVERY_STATUSES },
    attempts: { type: 'array', items: attemptSchema, description: 'Oldest first (the last 50)' },
    next_attempt_at: { ...nullableTimestamp, description: 'When the next attempt is due (pending and failed)' },
    created_at: timestamp,
  },
} as const;

export const listDeliveriesQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    ...paginationQueryProperties,
    status: commaList(DELIVERY_STATUSES),
    event: { type: 'string', enum: ['ping', ...EVENT_TYPES] },
  },
} as const;

export type WebhookJson = FromSchema<typeof webhookSchema>;
export type DeliveryJson = FromSchema<typeof deliverySchema>;
export type CreateWebhookBody = FromSchema<typeof createWebhookBody, { keepDefaultedPropertiesOptional: true }>;
export type PatchWebhookBody = FromSchema<typeof patchWebhookBody>;
export type ListDeliveriesQuery = FromSchema<typeof listDeliveriesQuery>;
