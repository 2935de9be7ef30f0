/**
 * The intake form (SPEC §3.1) as pure logic, no database: its types, the default form, the
 * check of a form a workspace sets (meta-schema + cross-field rules), the check of each
 * answer a customer gives, and answers → the fields of the ticket the form opens.
 *
 * Answers are validated with ajv (formats, lengths); a bad answer yields one short sentence
 * the bot sends before asking the same question again. What an answer is stored as
 * (StoredAnswer) is plain JSON, so a form in progress can live in the database between steps.
 */
import type { ValidateFunction } from 'ajv/dist/2020.js';
import { compile, fieldErrors } from '../kernel/validation.js';
import type { Priority } from '../tickets/ticket-status.js';
import { intakeFormBody, MAX_TEXT_LENGTH } from './intake-form-schemas.js';

export type { Priority };

export interface ChoiceOption { value: string; label: string; priority?: Priority }

export interface FormField {
  /** ^[a-z][a-z0-9_]{0,39}$, unique in the form. */
  key: string;
  type: 'choice' | 'text' | 'text_or_media' | 'email' | 'phone';
  /** 1-1000 characters: what the bot asks. */
  question: string;
  /** Optional fields get a "Skip" button. */
  required: boolean;
  /** text / text_or_media (the text part; a caption is held to max_length only). */
  min_length?: number;
  /** text / text_or_media; at most 4000 (absent: 4000). */
  max_length?: number;
  /** choice only: 1-12 options, label 1-40 chars, values unique. */
  options?: ChoiceOption[];
}

export interface IntakeForm { fields: FormField[] }

/** The most characters a subject may have (tickets hold 200). */
export const MAX_SUBJECT_LENGTH = 200;

/** The form of a workspace that has not set one (SPEC §3.1). */
export const DEFAULT_INTAKE_FORM: IntakeForm = deepFreeze({
  fields: [
    {
      key: 'category', type: 'choice', question: 'What can we help you with?', required: true,
      options: [
        { value: 'billing', label: 'Billing', priority: 'normal' },
        { value: 'technical', label: 'Technical problem', priority: 'high' },
        { value: 'account', label: 'Account', priority: 'normal' },
        { value: 'other', label: 'Other', priority: 'low' },
      ],
    },
    { key: 'subject', type: 'text', question: 'What is the subject?', required: true, max_length: 120 },
    {
      key: 'description', type: 'text_or_media', required: true, max_length: MAX_TEXT_LENGTH,
      question: 'Please describe the problem. You can send text, a photo or a document.',
    },
    { key: 'email', type: 'email', question: 'What email address can we reach you at?', required: false },
  ],
});

/** What the customer gave for the current question. */
export type AnswerInput =
  | { kind: 'text'; text: string }
  /** A photo, document, …: the attachment is opaque here and kept as given. */
  | { kind: 'media'; caption: string | null; attachment: Record<string, unknown> }
  /** A button press: the option's index. */
  | { kind: 'choice'; index: number }
  | { kind: 'skip' };

/** JSON-serialisable (kept in the database between steps). */
export type StoredAnswer = string | null | { text: string | null; attachment: Record<string, unknown> };

/** problem: one short sentence for the customer. */
export type AnswerCheck = { ok: true; value: StoredAnswer } | { ok: false; problem: string };

// ---------------------------------------------------------------------------------------
// Answers

/** Characters as ajv's minLength/maxLength count them (code points, not UTF-16 units). */
const length = (s: string) => [...s].length;
const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;
/** "order_number" → "The order number". */
const theName = (field: FormField) => `The ${field.key.replace(/_/g, ' ')}`;

const EMAIL_MAX = 254;
/** Digits with an optional leading +, after spaces, dots, dashes and brackets are dropped. */
const PHONE_PATTERN = '^\\+?[0-9]{7,15}$';

const emailValidator = compile({ type: 'string', format: 'email', maxLength: EMAIL_MAX }, 'body');
const phoneValidator = compile({ type: 'string', pattern: PHONE_PATTERN }, 'body');

/** Length validators by (min, max): forms are few and their bounds repeat, so the cache stays small. */
const lengthValidators = new Map<string, ValidateFunction>();
function lengthValidator(min: number, max: number): ValidateFunction {
  const id = `${min}:${max}`;
  let v = lengthValidators.get(id);
  if (!v) {
    if (lengthValidators.size >= 1000) lengthValidators.clear();
    v = compile({ type: 'string', minLength: min, maxLength: max }, 'body');
    lengthValidators.set(id, v);
  }
  return v;
}

const bounds = (field: FormField) => ({
  min: Math.max(field.min_length ?? 1, 1),
  max: Math.min(field.max_length ?? MAX_TEXT_LENGTH, MAX_TEXT_LENGTH),
});

/** A text answer (trimmed) against the field's lengths; null when it fits. */
function lengthProblem(field: FormField, text: string, min: number, max: number): string | null {
  if (lengthValidator(min, max)(text)) return null;
  const n = length(text);
  if (n > max) return `${theName(field)} can be at most ${plural(max, 'character')} (yours has ${n}).`;
  return `${theName(field)} must be at least ${plural(min, 'character')} (yours has ${n}).`;
}

const CHOOSE = 'Please choose one of the buttons.';

/** Whether `input` answers `field`, and what to store when it does. */
export function checkAnswer(field: FormField, input: AnswerInput): AnswerCheck {
  const fail = (problem: string): AnswerCheck => ({ ok: false, problem });
  if (input.kind === 'skip') {
    if (field.required) return fail(field.type === 'choice' ? 'This question can\'t be skipped; please choose one of the buttons.' : 'This question can\'t be skipped; please answer it.');
    return { ok: true, value: null };
  }
  switch (field.type) {
    case 'choice': {
      if (input.kind !== 'choice') return fail(CHOOSE);
      const options = field.options ?? [];
      if (!Number.isInteger(input.index) || input.index < 0 || input.index >= options.length) return fail(CHOOSE);
      return { ok: true, value: options[input.index]!.value };
    }
    case 'text':
    case 'text_or_media': {
      const { min, max } = bounds(field);
      if (input.kind === 'choice') return fail(field.type === 'text' ? 'Please type your answer.' : 'Please type your answer or send a photo or document.');
      if (input.kind === 'media') {
        if (field.type === 'text') return fail('Please answer with text, not a file.');
        // The media is the answer; a caption is welcome but held to the maximum length.
        const caption = input.caption?.trim() || null;
        if (caption !== null) {
          const problem = lengthProblem(field, caption, 1, max);
          if (problem) return fail(problem);
        }
        return { ok: true, value: { text: caption, attachment: input.attachment } };
      }
      const text = input.text.trim();
      if (text === '') return fail(field.required ? 'Please type your answer.' : 'Please type your answer, or press Skip.');
      const problem = lengthProblem(field, text, min, max);
      return problem ? fail(problem) : { ok: true, value: text };
    }
    case 'email': {
      if (input.kind !== 'text') return fail('Please type your email address.');
      const email = input.text.trim();
      if (!emailValidator(email)) return fail('That doesn\'t look like an email address; please send one like name@example.com.');
      return { ok: true, value: email };
    }
    case 'phone': {
      if (input.kind !== 'text') return fail('Please type your phone number.');
      const phone = input.text.trim().replace(/[\s().-]/g, '');
      if (!phoneValidator(phone)) return fail('That doesn\'t look like a phone number; please send digits with the country code, like +49 30 1234567.');
      return { ok: true, value: phone };
    }
    default:
      return fail('This question cannot be answered right now.');
  }
}

/** The message that asks `field`, step of total counted from 1: "(2/4) What is the subject?". */
export function questionText(field: FormField, step: number, total: number): string {
  return `(${step}/${total}) ${field.question}`;
}

// ---------------------------------------------------------------------------------------
// Answers → ticket

export interface TicketFromForm {
  subject: string;
  description: string;
  category: string | null;
  priority: Priority;
  email: string | null;
  phone: string | null;
  custom_fields: Record<string, string>;
  /** The media given as answers, in the order of the form. */
  attachments: Record<string, unknown>[];
}

const textOf = (a: StoredAnswer | undefined): string | null => (a == null ? null : typeof a === 'string' ? a : a.text);

/**
 * subject ← the field keyed subject; description ← the field keyed description (text or
 * caption, '' when none); category ← the value of the field keyed category; priority ← the
 * chosen option's priority of the first choice field whose option sets one, else normal;
 * email/phone ← the fields of those types; every other answered field → custom_fields.
 */
export function ticketFromAnswers(form: IntakeForm, answers: Record<string, StoredAnswer>): TicketFromForm {
  const out: TicketFromForm = {
    subject: '', description: '', category: null, priority: 'normal', email: null, phone: null, custom_fields: {}, attachments: [],
  };
  let priority: Priority | null = null;
  let emailSeen = false;
  let phoneSeen = false;
  for (const field of form.fields) {
    const answer = Object.hasOwn(answers, field.key) ? answers[field.key] : undefined;
    if (answer && typeof answer === 'object' && answer.attachment) out.attachments.push(answer.attachment);
    const text = textOf(answer);
    if (field.type === 'choice' && typeof answer === 'string' && priority === null) {
      priority = field.options?.find((o) => o.value === answer)?.priority ?? null;
    }
    if (field.key === 'subject') out.subject = text ?? '';
    else if (field.key === 'description') out.description = text ?? '';
    else if (field.key === 'category') out.category = text;
    else if (field.type === 'email' && !emailSeen) { emailSeen = true; out.email = text; }
    else if (field.type === 'phone' && !phoneSeen) { phoneSeen = true; out.phone = text; }
    else if (text !== null) out.custom_fields[field.key] = text;
  }
  out.priority = priority ?? 'normal';
  return out;
}

// ---------------------------------------------------------------------------------------
// The form itself

export type FormCheck = { ok: true; form: IntakeForm } | { ok: false; details: { field: string; error: string }[] };

const metaSchema = compile(intakeFormBody, 'body');
const TEXT_TYPES: ReadonlySet<FormField['type']> = new Set(['text', 'text_or_media']);

/**
 * A form a workspace wants to use: the meta-schema, then what a schema cannot say — keys
 * unique; exactly one field keyed subject (text, required, max_length ≤ 200); category, when
 * present, a choice; description, when present, text or text_or_media; options on choice
 * fields only (and required there) with unique values; lengths on text fields only, min ≤
 * max; at most one email and one phone field. The form returned is a copy, with the
 * subject's max_length made explicit (200 when absent). Details name paths like
 * "fields[2].options".
 */
export function checkForm(body: unknown): FormCheck {
  if (!metaSchema(body)) {
    return { ok: false, details: fieldErrors(metaSchema.errors ?? [], body, 'body') };
  }
  const form = structuredClone(body) as IntakeForm;
  const details: { field: string; error: string }[] = [];
  const problem = (field: string, error: string) => details.push({ field, error });
  const firstIndex = new Map<string, number>();
  const byType = new Map<FormField['type'], number>();
  form.fields.forEach((f, i) => {
    const at = `fields[${i}]`;
    const earlier = firstIndex.get(f.key);
    if (earlier !== undefined) problem(`${at}.key`, `must be unique ("${f.key}" is also the key of fields[${earlier}])`);
    else firstIndex.set(f.key, i);

    if (f.type === 'email' || f.type === 'phone') {
      const other = byType.get(f.type);
      if (other !== undefined) problem(`${at}.type`, `a form can have only one ${f.type} field (fields[${other}] is one)`);
      else byType.set(f.type, i);
    }

    if (f.type === 'choice') {
      if (!f.options) problem(`${at}.options`, 'is required for a choice field');
      const values = new Map<string, number>();
      f.options?.forEach((o, j) => {
        const dup = values.get(o.value);
        if (dup !== undefined) problem(`${at}.options[${j}].value`, `must be unique within the field ("${o.value}" is also options[${dup}])`);
        else values.set(o.value, j);
      });
    } else if (f.options !== undefined) {
      problem(`${at}.options`, 'only choice fields have options');
    }

    if (!TEXT_TYPES.has(f.type)) {
      if (f.min_length !== undefined) problem(`${at}.min_length`, 'applies to text and text_or_media fields only');
      if (f.max_length !== undefined) problem(`${at}.max_length`, 'applies to text and text_or_media fields only');
    } else if (f.min_length !== undefined && f.max_length !== undefined && f.min_length > f.max_length) {
      problem(`${at}.min_length`, `must not be more than max_length (${f.max_length})`);
    }

    if (f.key === 'subject') {
      if (f.type !== 'text') problem(`${at}.type`, 'must be text for the subject');
      if (!f.required) problem(`${at}.required`, 'must be true for the subject');
      if (f.max_length !== undefined && f.max_length > MAX_SUBJECT_LENGTH) problem(`${at}.max_length`, `must be at most ${MAX_SUBJECT_LENGTH} for the subject`);
      if (f.type === 'text' && f.max_length === undefined) f.max_length = MAX_SUBJECT_LENGTH;
    }
    if (f.key === 'category' && f.type !== 'choice') problem(`${at}.type`, 'must be choice for the category');
    if (f.key === 'description' && !TEXT_TYPES.has(f.type)) problem(`${at}.type`, 'must be text or text_or_media for the description');
  });
  if (!firstIndex.has('subject')) problem('fields', 'must include a field keyed "subject" (type text, required)');
  return details.length ? { ok: false, details } : { ok: true, form };
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}
