import type { FromSchema } from 'json-schema-to-ts';
import { timestamp } from '../http/common-schemas.js';
import { paginationQueryProperties } from '../http/pagination.js';

const name = { type: 'string', minLength: 1, maxLength: 200, pattern: '\\S', description: 'What the team calls this bot' } as const;
const botToken = {
  type: 'string',
  minLength: 1,
  maxLength: 200,
  description: 'The token from @BotFather (123456789:AA…); checked with Telegram\'s getMe and never returned',
} as const;
const supportChatId = {
  type: 'integer',
  description: 'The forum supergroup where ticket topics are created: a supergroup chat id, -100…',
} as const;
const isDefault = {
  type: 'boolean',
  description: 'The bot used when nothing else decides; making one the default unsets the previous one',
} as const;

export const accountSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'name', 'bot_user_id', 'bot_username', 'support_chat_id', 'is_default', 'created_at', 'updated_at'],
  properties: {
    id: { type: 'string' },
    name: { type: 'string' },
    bot_user_id: { type: ['integer', 'null'], description: 'The bot\'s Telegram user id' },
    bot_username: { type: ['string', 'null'], description: 'The bot\'s @username, without the @ (null in sandbox workspaces, which never call Telegram)' },
    support_chat_id: { type: ['integer', 'null'] },
    is_default: { type: 'boolean' },
    created_at: timestamp,
    updated_at: timestamp,
  },
} as const;

export const createAccountBody = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'bot_token'],
  properties: {
    name,
    bot_token: botToken,
    support_chat_id: { ...supportChatId, type: ['integer', 'null'] },
    is_default: { ...isDefault, description: `${isDefault.description}. A workspace's first bot is always the default` },
  },
} as const;

export const patchAccountBody = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  properties: {
    name,
    bot_token: { ...botToken, description: 'A new token of the same bot (after a revoke in @BotFather); checked with getMe' },
    support_chat_id: { ...supportChatId, type: ['integer', 'null'], description: `${supportChatId.description}; null clears it` },
    is_default: { ...isDefault, description: 'true makes this the default bot; to change the default, make another bot the default' },
  },
} as const;

export const listAccountsQuery = {
  type: 'object',
  additionalProperties: false,
  properties: { ...paginationQueryProperties },
} as const;

export type AccountJson = FromSchema<typeof accountSchema>;
export type CreateAccountBody = FromSchema<typeof createAccountBody>;
export type PatchAccountBody = FromSchema<typeof patchAccountBody>;
