import { idRef } from '../http/common-schemas.js';
import { STRATEGIES } from './assignment.js';

export const assignBody = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  description: 'One of: agent_id (null unassigns; team_id may come along), team_id (the team\'s queue; null: no team), strategy (with an optional team_id)',
  properties: {
    agent_id: { type: ['string', 'null'], pattern: idRef('ag').pattern },
    team_id: { type: ['string', 'null'], pattern: idRef('team').pattern },
    strategy: { type: 'string', enum: STRATEGIES, description: 'Pick the agent: round_robin, least_loaded or skills, among the team\'s (given, else the ticket\'s, else every) active agents with room' },
    note: { type: 'string', minLength: 1, maxLength: 4096, pattern: '\\S', description: 'The transfer note: posted internally on the ticket' },
  },
} as const;
