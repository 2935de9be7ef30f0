import type { FromSchema } from 'json-schema-to-ts';
import { timestamp } from '../http/common-schemas.js';

export const workspaceSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'name', 'mode', 'timezone', 'auto_close_after_hours', 'daily_send_limit', 'reopen_resolved_on_reply', 'lead_chat_id', 'digest_time', 'created_at', 'updated_at'],
  properties: {
    id: { type: 'string' },
    name: { type: 'string' },
    mode: { type: 'string', enum: ['live', 'sandbox'] },
    timezone: { type: 'string' },
    auto_close_after_hours: { type: 'integer' },
    daily_send_limit: { type: 'integer' },
    reopen_resolved_on_reply: { type: 'boolean' },
    lead_chat_id: { type: ['integer', 'null'] },
    digest_time: { type: ['string', 'null'] },
    created_at: timestamp,
    updated_at: timestamp,
  },
} as const;

export const patchWorkspaceBody = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  properties: {
    name: { type: 'string', minLength: 1, maxLength: 200 },
    timezone: { type: 'string', format: 'time-zone', description: 'IANA time zone, e.g. Europe/Berlin' },
    auto_close_after_hours: { type: 'integer', minimum: 1, maximum: 8760 },
    daily_send_limit: { type: 'integer', minimum: 0, maximum: 100000 },
    reopen_resolved_on_reply: { type: 'boolean' },
    lead_chat_id: {
      type: ['integer', 'null'], minimum: -9_999_999_999_999, maximum: 9_999_999_999_999, not: { const: 0 },
      description: 'The Telegram chat of the team leads (a group: negative, e.g. -1001234567890), for escalation notices and the daily digest; null = none',
    },
    digest_time: {
      type: ['string', 'null'], pattern: '^([01][0-9]|2[0-3]):[0-5][0-9]$', examples: ['09:00'],
      description: 'When the daily digest goes to lead_chat_id, "HH:MM" (00:00-23:59) in the workspace time zone; null = no digest',
    },
  },
} as const;

export type WorkspaceJson = FromSchema<typeof workspaceSchema>;
export type PatchWorkspaceBody = FromSchema<typeof patchWorkspaceBody>;
