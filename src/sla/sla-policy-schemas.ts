import type { FromSchema } from 'json-schema-to-ts';
import { idRef, timestamp } from '../http/common-schemas.js';
import { paginationQueryProperties } from '../http/pagination.js';

/** A year of minutes: the longest target a policy may set. */
export const MAX_TARGET_MINUTES = 525_600;

const minutes = (what: string) => ({
  type: 'integer', minimum: 1, maximum: MAX_TARGET_MINUTES,
  description: `${what}, in whole minutes (1-525600); business minutes when the policy has business_hours, wall-clock minutes otherwise`,
}) as const;

const target = {
  type: 'object',
  additionalProperties: false,
  required: ['first_response_minutes', 'resolution_minutes'],
  properties: {
    first_response_minutes: minutes('From the ticket\'s creation to the first public agent reply'),
    next_response_minutes: minutes('Optional: from a customer message after the last public agent reply to the next one. Absent = no next-response target (it is never null: absent in requests and responses alike)'),
    resolution_minutes: minutes('From the ticket\'s creation to its resolution'),
  },
} as const;

const targets = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  properties: { low: target, normal: target, high: target, urgent: target },
  description: 'The targets of each ticket priority (low, normal, high, urgent); at least one. A priority without a target has no SLA clock. A PATCH replaces the whole object',
} as const;

const hhmm = { type: 'string', pattern: '^([01][0-9]|2[0-3]):[0-5][0-9]$|^24:00$', examples: ['09:00', '24:00'], description: 'HH:MM, 00:00-24:00 (24:00 = the end of the day)' } as const;

const weeklyInterval = {
  type: 'object',
  additionalProperties: false,
  required: ['day', 'start', 'end'],
  properties: {
    day: { type: 'integer', minimum: 1, maximum: 7, description: 'ISO day of the week: 1 = Monday … 7 = Sunday' },
    start: hhmm,
    end: { ...hhmm, description: 'HH:MM after start, the same day (an interval may not cross midnight: split it at 24:00 / 00:00)' },
  },
} as const;

const businessHours = {
  type: ['object', 'null'],
  additionalProperties: false,
  required: ['timezone', 'weekly'],
  properties: {
    timezone: { type: 'string', minLength: 1, maxLength: 64, description: 'IANA time zone of the calendar, e.g. Europe/Berlin (DST is followed)' },
    weekly: {
      type: 'array', maxItems: 70, items: weeklyInterval,
      description: 'Working intervals of the week; a day may have several (not overlapping); days without one are closed. At least one minute of working time',
    },
    holidays: {
      type: 'array', maxItems: 400, items: { type: 'string', pattern: '^[0-9]{4}-[0-9]{2}-[0-9]{2}$', examples: ['2025-12-25'], description: 'YYYY-MM-DD' },
      description: 'Closed dates in the calendar\'s time zone (default [])',
    },
  },
  description: 'When the SLA clocks run. null (the default) = 24/7 wall-clock time. A PATCH replaces the whole object',
} as const;

const businessHoursOut = {
  type: ['object', 'null'],
  additionalProperties: false,
  required: ['timezone', 'weekly', 'holidays'],
  properties: {
    timezone: { type: 'string' },
    weekly: { type: 'array', items: weeklyInterval },
    holidays: { type: 'array', items: { type: 'string' } },
  },
} as const;

const name = { type: 'string', minLength: 1, maxLength: 200, pattern: '\\S' } as const;
const isDefault = {
  type: 'boolean',
  description: 'The workspace default, for tickets whose team has no policy of its own (default false). Making a policy the default unsets the previous one. A default is workspace-wide: true together with a team_id is a 422',
} as const;
const teamId = {
  type: ['string', 'null'], pattern: idRef('team').pattern,
  description: 'The team whose tickets this policy covers (at most one live policy per team: 409); null (the default) = not team-specific',
} as const;
const warnAtPercent = { type: 'integer', minimum: 1, maximum: 99, description: 'A target is at risk (sla.warning) at this percentage of its duration (1-99, default 80)' } as const;
const pause = { type: 'boolean', description: 'The resolution clock stops while the ticket is waiting_on_customer (default true)' } as const;

export const slaPolicySchema = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'name', 'is_default', 'team_id', 'targets', 'warn_at_percent', 'pause_while_waiting_on_customer', 'business_hours', 'created_at', 'updated_at'],
  properties: {
    id: { type: 'string' },
    name: { type: 'string' },
    is_default: { type: 'boolean' },
    team_id: { type: ['string', 'null'] },
    targets,
    warn_at_percent: { type: 'integer' },
    pause_while_waiting_on_customer: { type: 'boolean' },
    business_hours: businessHoursOut,
    created_at: timestamp,
    updated_at: timestamp,
  },
} as const;

const writable = {
  name,
  is_default: isDefault,
  team_id: teamId,
  targets,
  warn_at_percent: warnAtPercent,
  pause_while_waiting_on_customer: pause,
  business_hours: businessHours,
} as const;

export const createSlaPolicyBody = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'targets'],
  properties: writable,
} as const;

export const patchSlaPolicyBody = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  properties: writable,
  description: 'Only the fields given change; targets and business_hours are replaced whole',
} as const;

export const listSlaPoliciesQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    ...paginationQueryProperties,
    team_id: { type: 'string', pattern: `^(none|${idRef('team').pattern.slice(1, -1)})$`, description: 'Only the policy of this team; none = only those without a team' },
    is_default: { type: 'boolean', description: 'true: only the default; false: all but the default' },
  },
} as const;

export type SlaPolicyJson = FromSchema<typeof slaPolicySchema>;
export type CreateSlaPolicyBody = FromSchema<typeof createSlaPolicyBody, { keepDefaultedPropertiesOptional: true }>;
export type PatchSlaPolicyBody = FromSchema<typeof patchSlaPolicyBody, { keepDefaultedPropertiesOptional: true }>;
export type ListSlaPoliciesQuery = FromSchema<typeof listSlaPoliciesQuery>;
export type SlaTargetJson = FromSchema<typeof target>;
