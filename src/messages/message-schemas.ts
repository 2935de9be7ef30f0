import type { FromSchema } from 'json-schema-to-ts';
import { actorSchema } from '../events/event-schemas.js';
import { idRef, nullableTimestamp, timestamp } from '../http/common-schemas.js';
import { paginationQueryProperties } from '../http/pagination.js';

/** Telegram's limit for one text message. */
export const MAX_TEXT = 4096;

export const messageSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'ticket_id', 'contact_id', 'direction', 'visibility', 'author', 'text', 'attachments', 'status', 'failure_reason', 'simulated', 'created_at', 'sent_at'],
  properties: {
    id: { type: 'string' },
    ticket_id: { type: ['string', 'null'] },
    contact_id: { type: ['string', 'null'] },
    direction: { type: 'string', enum: ['inbound', 'outbound'] },
    visibility: { type: 'string', enum: ['public', 'internal'] },
    author: actorSchema,
    text: { type: 'string' },
    attachments: {
      type: 'array',
      items: {
        type: 'object',
        required: ['type'],
        properties: {
          type: { type: 'string', description: 'photo, document, voice, video, sticker, audio, animation…' },
          file_id: { type: 'string' },
          file_name: { type: ['string', 'null'] },
          mime_type: { type: ['string', 'null'] },
          file_size: { type: ['integer', 'null'] },
        },
      },
    },
    status: { type: 'string', enum: ['received', 'queued', 'sent', 'failed'] },
    failure_reason: { type: ['string', 'null'] },
    simulated: { type: 'boolean', description: 'Sandbox workspace: marked sent without calling Telegram' },
    created_at: timestamp,
    sent_at: nullableTimestamp,
  },
} as const;

export const sentMessageSchema = {
  ...messageSchema,
  required: [...messageSchema.required, 'eta'],
  properties: { ...messageSchema.properties, eta: { ...timestamp, description: 'When the message is expected to go out' } },
} as const;

export const postTicketMessageBody = {
  type: 'object',
  additionalProperties: false,
  description: 'text, or canned_response_id (rendered for the ticket, its assignee as the agent; the response\'s usage_count grows)',
  properties: {
    text: { type: 'string', minLength: 1, maxLength: MAX_TEXT, pattern: '\\S' },
    canned_response_id: idRef('cr'),
    internal: { type: 'boolean', default: false, description: 'An internal note: never sent to the customer' },
  },
} as const;

export const listTicketMessagesQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    ...paginationQueryProperties,
    visibility: { type: 'string', enum: ['public', 'internal'] },
  },
} as const;

export const sendMessageBody = {
  type: 'object',
  additionalProperties: false,
  required: ['to', 'text'],
  properties: {
    to: {
      description: '"@username", a Telegram user id (number or digits) or a contact id "ct_…"',
      oneOf: [
        { type: 'string', pattern: `^(@[A-Za-z0-9_]{4,32}|[1-9][0-9]{0,15}|${idRef('ct').pattern.slice(1, -1)})$`, examples: ['@ada_lovelace', '123456789', 'ct_01JD2V8M4QK7Z3X9T6N5R1W0HB'] },
        { type: 'integer', minimum: 1, maximum: 9007199254740991 },
      ],
    },
    text: { type: 'string', minLength: 1, maxLength: MAX_TEXT, pattern: '\\S', description: '{first_name} {last_name} {username} are filled in from the contact' },
    account_id: { ...idRef('acc'), description: 'The bot to send from; default: the one the contact last wrote to' },
  },
} as const;

export type MessageJson = FromSchema<typeof messageSchema>;
export type SendMessageBody = FromSchema<typeof sendMessageBody>;
