import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { AppError, type FieldError } from './errors.js';

export type Schema = Record<string, unknown>;

/** An IANA time zone name the runtime knows, e.g. `Europe/Berlin`. */
export function isTimeZone(name: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: name });
    return true;
  } catch {
    return false;
  }
}

function makeAjv(coerce: boolean): Ajv2020 {
  const ajv = new Ajv2020({
    allErrors: true,
    strict: true,
    // Nullable fields and custom-field values ("string, number, boolean or null") are unions.
    allowUnionTypes: true,
    // Query strings and path parameters arrive as text: coerce "20" to 20, and fill defaults.
    coerceTypes: coerce,
    useDefaults: coerce,
    // OpenAPI keywords that are annotations only.
    keywords: ['example'],
    // Errors carry their schema: a failed pattern is explained from it, never by its regex.
    verbose: true,
  });
  (addFormats as unknown as (a: Ajv2020) => void)(ajv);
  ajv.addFormat('time-zone', isTimeZone);
  return ajv;
}

/** Bodies are JSON: no coercion, so `"5"` is not an integer. */
const bodyAjv = makeAjv(false);
/** Path and query values are strings on the wire. */
const paramAjv = makeAjv(true);
/** Responses are checked (in tests) exactly as declared. */
const responseAjv = makeAjv(false);

export type Location = 'body' | 'query' | 'path' | 'response';

export function compile(schema: Schema, where: Location): ValidateFunction {
  const ajv = where === 'body' ? bodyAjv : where === 'response' ? responseAjv : paramAjv;
  return ajv.compile(schema);
}

function fieldOf(e: ErrorObject): string {
  const base = e.instancePath.split('/').slice(1).map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
  if (e.keyword === 'required') base.push((e.params as { missingProperty: string }).missingProperty);
  if (e.keyword === 'additionalProperties') base.push((e.params as { additionalProperty: string }).additionalProperty);
  return base.reduce((acc, p) => (/^\d+$/.test(p) ? `${acc}[${p}]` : acc ? `${acc}.${p}` : p), '');
}

/** What an id of each prefix is called in an error ("must be a team id like …"). */
const ID_NAMES: Record<string, string> = {
  ws: 'workspace', acc: 'bot account', key: 'API key', ag: 'agent', team: 'team', ct: 'contact', tkt: 'ticket',
  msg: 'message', cr: 'canned response', sla: 'SLA policy', esc: 'escalation rule', whk: 'webhook endpoint',
  evt: 'event', dlv: 'delivery', req: 'request',
};
/** A valid ULID, to show what an id looks like. */
const EXAMPLE_ULID = '01JD2V8M4QK7Z3X9T6N5R1W0HB';
const ULID_SOURCE = '[0-9A-HJKMNP-TV-Z]{26}';
const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
/** `^team_[…]{26}$` (idRef), and `^(none|team_[…]{26})$`. */
const ID_PATTERN = new RegExp(`^\\^([a-z]+)_${escapeRe(ULID_SOURCE)}\\$$`);
const ID_OR_NONE_PATTERN = new RegExp(`^\\^\\(none\\|([a-z]+)_${escapeRe(ULID_SOURCE)}\\)\\$$`);
/** `^(a|b)(,(a|b))*$` (commaList). */
const COMMA_LIST_PATTERN = /^\^\(([a-z_|-]+)\)\(,\(\1\)\)\*\$$/;

const FORMAT_EXAMPLES: Record<string, string> = {
  'date-time': 'a date-time like 2025-01-31T09:30:00Z',
  date: 'a date like 2025-01-31',
  email: 'an email address like ada@example.com',
  uri: 'a URL like https://example.com/hooks/topicdesk',
  'time-zone': 'an IANA time zone like Europe/Berlin',
};

/**
 * A failed `pattern`, said as what a valid value looks like: recognised from the shared id
 * and list patterns, else from the schema's `examples` and `description`. Never the regex:
 * integrators read these messages, and a regex tells them little.
 */
function patternMessage(pattern: string, schema: Schema | undefined): string {
  const orNull = Array.isArray(schema?.type) && (schema.type as string[]).includes('null') ? ', or null' : '';
  if (pattern === '\\S') return 'must not be blank';
  const id = ID_PATTERN.exec(pattern) ?? ID_OR_NONE_PATTERN.exec(pattern);
  if (id) {
    const name = ID_NAMES[id[1]] ?? id[1];
    return `must be ${/^[aeiou]/i.test(name) ? 'an' : 'a'} ${name} id like ${id[1]}_${EXAMPLE_ULID}${pattern.startsWith('^(none|') ? ', or none' : ''}${orNull}`;
  }
  const list = COMMA_LIST_PATTERN.exec(pattern);
  if (list) return `must be one or more of ${list[1].split('|').join(', ')} separated by commas`;
  const examples = Array.isArray(schema?.examples) ? (schema.examples as unknown[]).map(String) : [];
  const description = typeof schema?.description === 'string' ? schema.description : '';
  // A long description reads badly inside a sentence: the example says enough then.
  if (examples.length) return `must look like ${examples.join(' or ')}${description && description.length <= 60 ? ` (${description})` : ''}${orNull}`;
  if (description) return `is not in the expected form: ${description}`;
  return 'is not in the expected form';
}

function messageOf(e: ErrorObject, movedFields: Record<string, string>, field: string): string {
  switch (e.keyword) {
    case 'required': return 'is required';
    // Own keys only: a field named __proto__ or constructor is just unknown.
    case 'additionalProperties': return Object.hasOwn(movedFields, field) ? `is not changed here: use ${movedFields[field]}` : 'is not a known field';
    case 'enum': return `must be one of: ${(e.params as { allowedValues: unknown[] }).allowedValues.join(', ')}`;
    case 'pattern': return patternMessage((e.params as { pattern: string }).pattern, e.parentSchema as Schema | undefined);
    case 'format': {
      const format = (e.params as { format: string }).format;
      return FORMAT_EXAMPLES[format] ? `must be ${FORMAT_EXAMPLES[format]}` : `must be a valid ${format}`;
    }
    default: return e.message ?? 'is invalid';
  }
}

function valueAt(data: unknown, pointer: string): unknown {
  let v: any = data;
  for (const part of pointer.split('/').slice(1)) v = v?.[part.replace(/~1/g, '/').replace(/~0/g, '~')];
  return v;
}

/** Fields whose value is never echoed back in an error. */
const SECRET_FIELD = /secret|token|password/i;

export interface CheckOptions {
  /**
   * Fields refused here because another endpoint changes them, and that endpoint
   * (`status` → `POST /v1/tickets/{id}/status`): the error points there.
   */
  movedFields?: Record<string, string>;
}

/** ajv errors → `details[{field, error, received}]`, one per field, most specific first. */
export function fieldErrors(errors: ErrorObject[], data: unknown, where: Location, opts: CheckOptions = {}): FieldError[] {
  const seen = new Set<string>();
  const out: FieldError[] = [];
  for (const e of errors) {
    // `anyOf`/`oneOf` summaries repeat what their branches said; so does `propertyNames`.
    if (e.keyword === 'anyOf' || e.keyword === 'oneOf' || e.keyword === 'if' || e.keyword === 'propertyNames') continue;
    const field = fieldOf(e) || where;
    const propertyName = (e as { propertyName?: string }).propertyName;
    const error = (propertyName !== undefined ? `has a field name "${propertyName}" that ` : '') + messageOf(e, opts.movedFields ?? {}, field);
    if (seen.has(`${field} ${error}`)) continue;
    seen.add(`${field} ${error}`);
    const item: FieldError = { field, error };
    // What was received helps a client, except where echoing it would spread a secret.
    if (e.keyword !== 'required' && !SECRET_FIELD.test(field)) {
      const received = e.keyword === 'additionalProperties' ? valueAt(data, `${e.instancePath}/${fieldOf(e).split('.').pop()}`) : valueAt(data, e.instancePath);
      if (received === null || ['string', 'number', 'boolean'].includes(typeof received)) {
        item.received = typeof received === 'string' && received.length > 100 ? `${received.slice(0, 100)}…` : received;
      }
    }
    out.push(item);
  }
  return out;
}

const MAX_DETAILS = 20;

/**
 * Why PostgreSQL cannot keep `s` as it was sent, or null. Text cannot hold NUL; a UTF-16
 * surrogate without its pair (JSON's "\ud800") is no character at all: node-pg would store
 * U+FFFD in its place, and jsonb refuses the escape.
 */
function unstorable(s: string): string | null {
  if (s.includes('\u0000')) return 'must not contain the NUL character (\\u0000)';
  if (!(s as string & { isWellFormed(): boolean }).isWellFormed()) return 'must be well-formed Unicode (no unpaired surrogate \\uD800-\\uDFFF)';
  return null;
}

/**
 * The strings (values and keys) PostgreSQL cannot store, with why (unstorable). Iterative, in
 * document order: a deeply nested value must not overflow the stack.
 */
function unstorableStrings(value: unknown, where: string): { field: string; error: string }[] {
  const out: { field: string; error: string }[] = [];
  const stack: { value: unknown; path: string }[] = [{ value, path: '' }];
  while (stack.length && out.length < MAX_DETAILS) {
    const { value: v, path } = stack.pop()!;
    if (typeof v === 'string') {
      const error = unstorable(v);
      if (error) out.push({ field: path || where, error });
    } else if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i--) stack.push({ value: v[i], path: `${path}[${i}]` });
    } else if (v && typeof v === 'object') {
      const entries = Object.entries(v);
      for (let i = entries.length - 1; i >= 0; i--) {
        const [k, child] = entries[i];
        const childPath = path ? `${path}.${k}` : k;
        // The key is reported before its value, as a reader meets them.
        stack.push({ value: child, path: childPath });
        if (unstorable(k)) stack.push({ value: k, path: childPath });
      }
    }
  }
  return out;
}

/**
 * Fields that coercion turned into ±Infinity: ajv coerces the text "1e999" (or 400 nines) to
 * Infinity, counts it an integer, and skips minimum/maximum, which compare finite numbers only.
 * Only query and path values are coerced, and they are flat.
 */
function nonFiniteFields(data: unknown): string[] {
  if (!data || typeof data !== 'object') return [];
  return Object.entries(data).filter(([, v]) => typeof v === 'number' && !Number.isFinite(v)).map(([k]) => k);
}

/** Validates `data` in place (defaults and coercion apply) or throws a 422 validation_error. */
export function check(validate: ValidateFunction, data: unknown, where: Location, opts: CheckOptions = {}): void {
  const unstored = unstorableStrings(data, where);
  if (unstored.length) {
    throw new AppError('validation_error', `The ${where} holds text that cannot be stored: ${unstored.slice(0, 3).map((u) => `${u.field} ${u.error}`).join('; ')}`, { details: unstored });
  }
  if (validate(data)) {
    const infinite = nonFiniteFields(data);
    if (infinite.length) {
      throw new AppError('validation_error', `The ${where} is invalid: ${infinite.join(', ')} must be a finite number`, {
        details: infinite.map((field) => ({ field, error: 'must be a finite number' })),
      });
    }
    return;
  }
  const all = fieldErrors(validate.errors ?? [], data, where, opts);
  // A small body must not buy a huge answer: report the first few problems and how many more.
  const details = all.length > MAX_DETAILS
    ? [...all.slice(0, MAX_DETAILS), { field: where, error: `and ${all.length - MAX_DETAILS} more problems` }]
    : all;
  const summary = details.slice(0, 3).map((d) => `${d.field} ${d.error}`).join('; ');
  throw new AppError('validation_error', `The ${where === 'path' ? 'path' : where} is invalid: ${summary}`, { details });
}

/**
 * Cross-field rules JSON Schema can state only awkwardly under ajv's strict mode: exactly
 * one (or, with atLeastOne, one or more) of `fields` must be present in the body.
 */
export function requireOneOf(body: Record<string, unknown>, fields: readonly string[], opts: { atLeastOne?: boolean } = {}): void {
  const given = fields.filter((f) => body[f] !== undefined);
  if (given.length === 1 || (opts.atLeastOne && given.length > 1)) return;
  const list = fields.join(' or ');
  throw new AppError('validation_error', given.length === 0 ? `The body needs ${list}` : `Give ${list}, not both`, {
    details: (given.length === 0 ? fields : given).map((field) => ({ field, error: given.length === 0 ? `is required (or ${fields.filter((f) => f !== field).join(', ')})` : 'cannot be combined with the others' })),
  });
}
