/**
 * Examples for the OpenAPI document, made from the schemas themselves so they cannot drift
 * from what the server accepts and answers (openapi.ts keeps only those that pass the schema).
 * Deterministic: the same document on every start, so it can be cached and diffed.
 */

type S = Record<string, any>;

/** A ULID body that is valid Crockford base32 (no I, L, O, U), fixed for stable output. */
const ULID = '01JQ3Z8K6V4N2M7P9R5T1W3X8Y';
const AT = '2026-03-14T09:30:00.000Z';

/** Id prefixes of SPEC §2 by the field that holds such an id. */
const ID_FIELDS: Record<string, string> = {
  ticket_id: 'tkt', contact_id: 'ct', assignee_id: 'ag', agent_id: 'ag', team_id: 'team', team_ids: 'team',
  account_id: 'acc', policy_id: 'sla', sla_policy_id: 'sla', rule_id: 'esc', endpoint_id: 'whk', event_id: 'evt',
  workspace_id: 'ws', canned_response_id: 'cr', request_id: 'req', key_id: 'key', message_id: 'msg', ticket_ids: 'tkt',
};

/** Realistic values by field name, tried before anything generic. */
const BY_NAME: Record<string, unknown> = {
  subject: 'Refund for order #1042', description: 'I was charged twice for my March invoice.',
  text: 'Hi Sarah, the duplicate charge is refunded; it shows on your card in 3-5 days.',
  body: 'Hi {first_name}, thanks for waiting! Your refund is on its way.',
  note: 'Customer is on the Pro plan; refund approved by billing.',
  name: 'Sarah Miller', first_name: 'Sarah', last_name: 'Miller', username: 'sarah_miller',
  email: 'sarah@example.com', phone: '+14155550123', url: 'https://example.com/hooks/topicdesk',
  tag: 'billing', tags: ['billing', 'refund'], skills: ['billing'], category: 'billing', timezone: 'Europe/Berlin',
  digest_time: '09:00', title: 'Refund', shortcut: 'refund', to: '@sarah_miller', number: 42, rating: 5,
  telegram_user_id: 123456789, custom_fields: { plan: 'pro' }, type: 'ticket.created',
};

function stringFor(s: S, name: string | undefined, idPrefix: string | undefined): string {
  const candidates: unknown[] = [];
  const prefixed = /^\^(\w+)_\[0-9A-HJKMNP-TV-Z\]\{26\}\$$/.exec(s.pattern ?? '');
  if (prefixed) candidates.push(`${prefixed[1]}_${ULID}`);
  if (s.format === 'date-time') candidates.push(AT);
  if (s.format === 'email') candidates.push('sarah@example.com');
  if (s.format === 'uri' || s.format === 'url') candidates.push('https://example.com/hooks/topicdesk');
  if (name === 'id' && idPrefix) candidates.push(`${idPrefix}_${ULID}`);
  if (name && ID_FIELDS[name]) candidates.push(`${ID_FIELDS[name]}_${ULID}`);
  if (name && typeof BY_NAME[name] === 'string') candidates.push(BY_NAME[name]);
  candidates.push('billing', 'example', '09:00');
  const fits = (v: unknown): v is string => typeof v === 'string'
    && (s.minLength === undefined || v.length >= s.minLength) && (s.maxLength === undefined || v.length <= s.maxLength)
    && (s.pattern === undefined || new RegExp(s.pattern, 'u').test(v));
  return (candidates.find(fits) as string | undefined) ?? (candidates[0] as string);
}

function numberFor(s: S, name: string | undefined): number {
  let n = typeof BY_NAME[name ?? ''] === 'number' ? BY_NAME[name!] as number : (s.minimum ?? (s.exclusiveMinimum !== undefined ? s.exclusiveMinimum + 1 : 1));
  if (s.maximum !== undefined && n > s.maximum) n = s.maximum;
  if (s.minimum !== undefined && n < s.minimum) n = s.minimum;
  return n;
}

export interface ExampleOptions {
  /** Bodies leave out optional references to other resources: copied as is, they would 404. */
  request?: boolean;
  /** Prefix of a top-level `id` (the component's resource, e.g. `tkt`). */
  idPrefix?: string;
  /** Prefix of the `id` of nested named schemas (a Ticket's contact: `ct`). */
  prefixes?: ReadonlyMap<object, string>;
}

/** An example value for `schema`, or undefined where none can be made sensibly. */
export function exampleFor(schema: unknown, opts: ExampleOptions = {}, name?: string, depth = 0): unknown {
  if (!schema || typeof schema !== 'object' || depth > 8) return undefined;
  const s = schema as S;
  const own = opts.prefixes?.get(s);
  if (own && depth > 0) return exampleFor(s, { ...opts, idPrefix: own }, undefined, 0);
  if ('const' in s) return s.const;
  if (Array.isArray(s.examples) && s.examples.length) return s.examples[0];
  if (s.default !== undefined) return s.default;
  if (Array.isArray(s.enum)) return s.enum[0];
  for (const k of ['oneOf', 'anyOf'] as const) {
    // The first branch that is not null: the interesting case.
    if (Array.isArray(s[k]) && !s.properties) {
      const branch = s[k].find((b: S) => b.type !== 'null') ?? s[k][0];
      return exampleFor(branch, opts, name, depth + 1);
    }
  }
  if (name && name in BY_NAME && !(opts.request && name.endsWith('_id')) && typeof BY_NAME[name] !== 'string' && typeof BY_NAME[name] !== 'number') {
    return structuredClone(BY_NAME[name]);
  }
  const type = Array.isArray(s.type) ? s.type.find((t: string) => t !== 'null') ?? 'null' : s.type ?? (s.properties ? 'object' : undefined);
  switch (type) {
    case 'null': return null;
    case 'boolean': return name === 'active' || name === 'enabled';
    case 'integer':
    case 'number': return numberFor(s, name);
    case 'string': return stringFor(s, name, depth === 0 || name === 'id' ? opts.idPrefix : undefined);
    case 'array': {
      const item = exampleFor(s.items, { ...opts, idPrefix: name && ID_FIELDS[name] }, name && ID_FIELDS[name] ? 'id' : undefined, depth + 1);
      return item === undefined ? [] : [item];
    }
    case 'object': {
      const out: Record<string, unknown> = {};
      const required = new Set<string>(s.required ?? []);
      for (const [key, sub] of Object.entries<S>(s.properties ?? {})) {
        const isRef = key.endsWith('_id') || key.endsWith('_ids');
        if (opts.request && !required.has(key) && isRef) continue;
        const v = exampleFor(sub, { ...opts, idPrefix: depth === 0 ? opts.idPrefix : undefined }, key, depth + 1);
        if (v !== undefined) out[key] = v;
      }
      return out;
    }
    default: return undefined;
  }
}
