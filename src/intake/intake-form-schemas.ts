/**
 * The intake form over the API (SPEC §3.1, §4.2): the body of PUT /v1/intake-form — which is
 * also the form's meta-schema (checkForm in intake-form.ts adds the rules a schema cannot
 * state) — and the answer of GET/PUT.
 */
import type { FromSchema } from 'json-schema-to-ts';
import { nullableTimestamp } from '../http/common-schemas.js';
import { PRIORITIES } from '../tickets/ticket-status.js';

export const FIELD_TYPES = ['choice', 'text', 'text_or_media', 'email', 'phone'] as const;
export const MAX_FIELDS = 20;
export const MAX_OPTIONS = 12;
/** The most a text answer (or a caption) may be: Telegram's own message limit is 4096. */
export const MAX_TEXT_LENGTH = 4000;

const optionSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['value', 'label'],
  properties: {
    value: {
      type: 'string', minLength: 1, maxLength: 100, pattern: '\\S',
      description: 'What is stored: the ticket\'s category for the field keyed "category", else a custom field value',
    },
    label: { type: 'string', minLength: 1, maxLength: 40, pattern: '\\S', description: 'The button text' },
    priority: { type: 'string', enum: PRIORITIES, description: 'The ticket\'s priority when this option is chosen (the first choice field that sets one wins)' },
  },
} as const;

export const formFieldSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['key', 'type', 'question', 'required'],
  properties: {
    key: {
      type: 'string', pattern: '^[a-z][a-z0-9_]{0,39}$', examples: ['order_number'],
      description: 'Unique in the form. subject (required), description and category map to the ticket; email/phone fields to the contact; others become custom fields',
    },
    type: { type: 'string', enum: FIELD_TYPES },
    question: { type: 'string', minLength: 1, maxLength: 1000, pattern: '\\S', description: 'What the bot asks' },
    required: { type: 'boolean', description: 'Optional questions get a "Skip" button' },
    min_length: { type: 'integer', minimum: 0, maximum: MAX_TEXT_LENGTH, description: 'text and text_or_media only' },
    max_length: { type: 'integer', minimum: 1, maximum: MAX_TEXT_LENGTH, description: 'text and text_or_media only (the caption of media too); the subject: at most 200, 200 when absent' },
    options: { type: 'array', minItems: 1, maxItems: MAX_OPTIONS, items: optionSchema, description: 'choice only (required there): one button each' },
  },
} as const;

export const intakeFormBody = {
  type: 'object',
  additionalProperties: false,
  required: ['fields'],
  properties: {
    fields: { type: 'array', minItems: 1, maxItems: MAX_FIELDS, items: formFieldSchema, description: 'The questions, in the order the bot asks them' },
  },
} as const;

export const intakeFormSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['fields', 'is_default', 'updated_at'],
  properties: {
    fields: { type: 'array', items: formFieldSchema },
    is_default: { type: 'boolean', description: 'true: the workspace has not set a form of its own' },
    updated_at: { ...nullableTimestamp, description: 'When the form was last set (null for the default)' },
  },
} as const;

export type IntakeFormBody = FromSchema<typeof intakeFormBody>;
export type IntakeFormJson = FromSchema<typeof intakeFormSchema>;
