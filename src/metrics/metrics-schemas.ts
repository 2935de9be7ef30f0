import type { FromSchema } from 'json-schema-to-ts';
import { idRef, timestamp } from '../http/common-schemas.js';
import { PRIORITIES } from '../tickets/ticket-status.js';
import { GROUP_BY } from './metrics-service.js';

const range = {
  from: { ...timestamp, description: 'RFC 3339; start of the range, inclusive (default: `to` − 7 days)' },
  to: { ...timestamp, description: 'RFC 3339; end of the range, exclusive (default: now). `from` < `to`, at most 400 days apart' },
} as const;
const filters = {
  team_id: { ...idRef('team'), description: 'Only tickets of this team (at the measured moment for durations; now otherwise)' },
  agent_id: { ...idRef('ag'), description: 'Only this agent\'s tickets (first responder / assignee at resolution for durations; the assignee otherwise)' },
  priority: { type: 'string', enum: PRIORITIES },
} as const;
const groupBy = {
  type: 'string', enum: GROUP_BY,
  description: 'agent (with name), team (with name), priority, day (YYYY-MM-DD) or week (ISO, YYYY-Www) in the workspace time zone',
} as const;

export const rangeQuery = { type: 'object', additionalProperties: false, properties: { ...range, ...filters, group_by: groupBy } } as const;
export const agentsQuery = { type: 'object', additionalProperties: false, properties: { ...range, ...filters } } as const;
export const backlogQuery = { type: 'object', additionalProperties: false, properties: filters } as const;
export type RangeQuery = FromSchema<typeof rangeQuery>;

const seconds = { type: ['number', 'null'] } as const;
const plainStats = {
  type: 'object',
  additionalProperties: false,
  required: ['count', 'mean_seconds', 'p50_seconds', 'p90_seconds', 'max_seconds'],
  properties: { count: { type: 'integer' }, mean_seconds: seconds, p50_seconds: seconds, p90_seconds: seconds, max_seconds: seconds },
} as const;
const statsProperties = { ...plainStats.properties, business: { ...plainStats, description: 'The same in business seconds of each ticket\'s SLA calendar (= wall seconds without one)' } } as const;
export const statsSchema = { type: 'object', additionalProperties: false, required: [...plainStats.required, 'business'], properties: statsProperties } as const;
const groupKey = { key: { type: ['string', 'null'] }, name: { type: ['string', 'null'], description: 'group_by=agent or team: the name' } } as const;

export const durationReportSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['from', 'to', 'group_by', 'overall', 'groups'],
  properties: {
    from: timestamp, to: timestamp, group_by: { type: ['string', 'null'] }, overall: statsSchema,
    groups: { type: 'array', items: { type: 'object', additionalProperties: false, required: ['key', ...statsSchema.required], properties: { ...groupKey, ...statsProperties } } },
  },
} as const;

const target = {
  type: 'object', additionalProperties: false, required: ['due', 'met', 'breached', 'compliance_percent'],
  properties: { due: { type: 'integer' }, met: { type: 'integer' }, breached: { type: 'integer' }, compliance_percent: { type: ['number', 'null'] } },
} as const;
const targets = {
  type: 'object', additionalProperties: false, required: ['first_response', 'next_response', 'resolution'],
  properties: { first_response: target, next_response: target, resolution: target },
} as const;
export const slaReportSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['from', 'to', 'targets', 'at_risk_now', 'breached_open_now'],
  properties: {
    from: timestamp, to: timestamp, targets, at_risk_now: { type: 'integer' }, breached_open_now: { type: 'integer' }, group_by: { type: 'string' },
    groups: { type: 'array', items: { type: 'object', additionalProperties: false, required: ['key', 'targets'], properties: { ...groupKey, targets } } },
  },
} as const;

const counts = (keys: readonly string[]) => ({
  type: 'object', additionalProperties: false, required: keys, properties: Object.fromEntries(keys.map((k) => [k, { type: 'integer' }])),
}) as const;
export const backlogSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['as_of', 'total', 'unassigned', 'by_status', 'by_priority', 'by_age', 'by_team'],
  properties: {
    as_of: timestamp, total: { type: 'integer' }, unassigned: { type: 'integer' },
    by_status: counts(['open', 'in_progress', 'waiting_on_customer']),
    by_priority: counts(PRIORITIES),
    by_age: counts(['lt_1h', 'h1_to_4', 'h4_to_24', 'd1_to_3', 'gt_3d']),
    by_team: { type: 'array', items: { type: 'object', additionalProperties: false, required: ['key', 'name', 'count'], properties: { ...groupKey, count: { type: 'integer' } } } },
  },
} as const;

const csatFigures = {
  count: { type: 'integer' }, average: { type: ['number', 'null'] }, distribution: counts(['1', '2', '3', '4', '5']),
} as const;
export const csatSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['from', 'to', 'count', 'average', 'distribution'],
  properties: {
    from: timestamp, to: timestamp, ...csatFigures, group_by: { type: 'string' },
    groups: { type: 'array', items: { type: 'object', additionalProperties: false, required: ['key', 'count', 'average', 'distribution'], properties: { ...groupKey, ...csatFigures } } },
  },
} as const;

export const agentsReportSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['from', 'to', 'items'],
  properties: {
    from: timestamp, to: timestamp,
    items: {
      type: 'array',
      items: {
        type: 'object', additionalProperties: false,
        required: ['agent_id', 'name', 'assigned', 'resolved', 'open_now', 'first_response', 'resolution', 'csat_average'],
        properties: {
          agent_id: { type: 'string' }, name: { type: 'string' },
          assigned: { type: 'integer', description: 'Tickets created in the range that the agent holds' },
          resolved: { type: 'integer', description: 'Resolutions in the range with the agent as assignee' },
          open_now: { type: 'integer' }, first_response: statsSchema, resolution: statsSchema, csat_average: { type: ['number', 'null'] },
        },
      },
    },
  },
} as const;
