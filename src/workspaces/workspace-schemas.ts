import type { FromSchema } from 'json-schema-to-ts';
import { timestamp } from '../http/common-schemas.js';

export const workspaceSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'name', 'mode', 'timezone', 'auto_close_after_hours', 'daily_send_limit', 'reopen_resolved_on_reply', 'created_at', 'updated_at'],
  properties: {
    id: { type: 'string' },
    name: { type: 'string' },
    mode: { type: 'string', enum: ['live', 'sandbox'] },
    timezone: { type: 'string' },
    auto_close_after_hours: { type: 'integer' },
    daily_send_limit: { type: 'integer' },
    reopen_resolved_on_reply: { type: 'boolean' },
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
  },
} as const;

export type WorkspaceJson = FromSchema<typeof workspaceSchema>;
export type PatchWorkspaceBody = FromSchema<typeof patchWorkspaceBody>;
