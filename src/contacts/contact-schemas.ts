import type { FromSchema } from 'json-schema-to-ts';
import { customFieldsOutSchema, customFieldsSchema, tagSchema, tagsSchema, timestamp } from '../http/common-schemas.js';
import { paginationQueryProperties } from '../http/pagination.js';

const telegramUserId = { type: 'integer', minimum: 1, maximum: 9007199254740991, description: 'Telegram user id' } as const;
/** Telegram usernames: 4-32 letters, digits and underscores; accepted with or without `@`. */
const username = { type: 'string', pattern: '^@?[A-Za-z0-9_]{4,32}$', examples: ['@ada_lovelace'], description: 'Telegram username, with or without @' } as const;
const name = { type: 'string', minLength: 1, maxLength: 200, pattern: '\\S' } as const;
const shortName = { type: 'string', minLength: 1, maxLength: 100, pattern: '\\S' } as const;
const email = { type: 'string', format: 'email', maxLength: 254 } as const;
const phone = { type: 'string', pattern: '^\\+?[0-9][0-9 ().-]{2,30}$', examples: ['+49 30 1234567'], description: 'Digits, spaces, ( ) . - and an optional leading +' } as const;
const nullable = <T extends Record<string, unknown>>(s: T) => ({ ...s, type: [s.type as string, 'null'] }) as const;

export const contactSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'telegram_user_id', 'username', 'name', 'first_name', 'last_name', 'email', 'phone', 'tags', 'custom_fields', 'blocked', 'created_at', 'updated_at'],
  properties: {
    id: { type: 'string' },
    telegram_user_id: { type: ['integer', 'null'] },
    username: { type: ['string', 'null'], description: 'Stored without @' },
    name: { type: ['string', 'null'] },
    first_name: { type: ['string', 'null'] },
    last_name: { type: ['string', 'null'] },
    email: { type: ['string', 'null'] },
    phone: { type: ['string', 'null'] },
    tags: { type: 'array', items: { type: 'string' } },
    custom_fields: customFieldsOutSchema,
    blocked: { type: 'boolean', description: 'The customer blocked the bot' },
    created_at: timestamp,
    updated_at: timestamp,
  },
} as const;

/** The identities and details a contact is created or matched with (also inline in POST /v1/tickets). */
export const contactFieldsProperties = {
  telegram_user_id: telegramUserId,
  username,
  email,
  name,
  first_name: shortName,
  last_name: shortName,
  phone,
} as const;

export const upsertContactBody = {
  type: 'object',
  additionalProperties: false,
  description: 'Needs at least one identity (telegram_user_id, username, email or phone). Matched on telegram_user_id, username or email (any of them); a match is updated, otherwise a contact is created',
  properties: {
    ...contactFieldsProperties,
    tags: { ...tagsSchema, description: 'Added to the contact\'s tags' },
    custom_fields: { ...customFieldsSchema, description: 'Merged into the contact\'s fields; null removes one' },
  },
} as const;

export const patchContactBody = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  properties: {
    telegram_user_id: nullable(telegramUserId),
    username: nullable(username),
    email: nullable(email),
    name: nullable(name),
    first_name: nullable(shortName),
    last_name: nullable(shortName),
    phone: nullable(phone),
    tags: { ...tagsSchema, description: 'Replaces the tags' },
    custom_fields: { ...customFieldsSchema, description: 'Merged; null removes a field' },
    blocked: { type: 'boolean' },
  },
} as const;

export const contactTagsBody = {
  type: 'object',
  additionalProperties: false,
  required: ['tags'],
  properties: { tags: { ...tagsSchema, minItems: 1 } },
} as const;

export const contactTagParams = {
  type: 'object',
  required: ['id', 'tag'],
  additionalProperties: false,
  properties: {
    id: { type: 'string', pattern: '^ct_[0-9A-HJKMNP-TV-Z]{26}$' },
    // Any text: removing a tag the contact cannot have is a no-op, not "contact not found".
    tag: { type: 'string', minLength: 1, maxLength: 200 },
  },
} as const;

const contactFilters = {
  q: { type: 'string', minLength: 1, maxLength: 200, description: 'Substring of name, username, email or phone' },
  tag: { ...tagSchema, description: 'Only contacts with this tag' },
  blocked: { type: 'boolean' },
  created_after: { ...timestamp, description: 'created_at ≥ this' },
  created_before: { ...timestamp, description: 'created_at < this' },
} as const;

export const listContactsQuery = {
  type: 'object',
  additionalProperties: false,
  properties: { ...paginationQueryProperties, ...contactFilters },
} as const;

export const exportContactsQuery = {
  type: 'object',
  additionalProperties: false,
  properties: contactFilters,
} as const;

export type ContactJson = FromSchema<typeof contactSchema>;
export type UpsertContactBody = FromSchema<typeof upsertContactBody>;
export type PatchContactBody = FromSchema<typeof patchContactBody>;
export type ContactFilters = { q?: string; tag?: string; blocked?: boolean; created_after?: string; created_before?: string };
