/**
 * fast-check arbitraries from the JSON Schemas of /v1/openapi.json (the keywords the API uses:
 * type, enum, const, oneOf/anyOf, properties, required, additionalProperties, propertyNames,
 * items, min/max*, pattern, format), and hostile values to put where the schema says otherwise.
 * Values are "schema-shaped": mostly valid, sizes kept small; ids come from a pool of real ids.
 */
import fc from 'fast-check';

type Schema = Record<string, any>;

/** Ids to use where a schema asks for one: this workspace's, another workspace's, made up. */
export interface IdPool {
  own: Record<string, string[]>;
  foreign: Record<string, string[]>;
}

const ULID = fc.stringMatching(/^[0-9A-HJKMNP-TV-Z]{26}$/);
const ID_PATTERN = /^\^(?:\(none\|)?([a-z]+)_\[0-9A-HJKMNP-TV-Z\]\{26\}\)?\$$/;

/** An id of `prefix`: mostly a real one of this workspace, sometimes another workspace's or an unknown one. */
export function idArbitrary(pool: IdPool, prefix: string): fc.Arbitrary<string> {
  const options: fc.WeightedArbitrary<string>[] = [{ weight: 1, arbitrary: ULID.map((u) => `${prefix}_${u}`) }];
  if (pool.own[prefix]?.length) options.push({ weight: 6, arbitrary: fc.constantFrom(...pool.own[prefix]) });
  if (pool.foreign[prefix]?.length) options.push({ weight: 2, arbitrary: fc.constantFrom(...pool.foreign[prefix]) });
  return fc.oneof(...options);
}

/** Any id of another workspace (for hostile input: the answer must be the same 404 as for an unknown id). */
export function foreignIdArbitrary(pool: IdPool): fc.Arbitrary<string> {
  const all = Object.values(pool.foreign).flat();
  return all.length ? fc.constantFrom(...all) : ULID.map((u) => `ct_${u}`);
}

const ANNOTATIONS = new Set(['description', 'examples', 'example', 'default', 'title', 'deprecated', 'readOnly', 'writeOnly']);
const TIME_ZONES = ['UTC', 'Europe/Berlin', 'America/New_York', 'Asia/Kolkata', 'Australia/Lord_Howe', 'Pacific/Chatham'];

function stringArbitrary(s: Schema, pool: IdPool): fc.Arbitrary<string> {
  const maxLength = Math.min(s.maxLength ?? 60, 60);
  const minLength = Math.min(s.minLength ?? 0, maxLength);
  const id = typeof s.pattern === 'string' ? ID_PATTERN.exec(s.pattern) : null;
  if (id) return s.pattern.startsWith('^(none|') ? fc.oneof(fc.constant('none'), idArbitrary(pool, id[1])) : idArbitrary(pool, id[1]);
  let base: fc.Arbitrary<string>;
  if (s.format === 'date-time') base = fc.date({ min: new Date('2000-01-01T00:00:00Z'), max: new Date('2100-01-01T00:00:00Z'), noInvalidDate: true }).map((d) => d.toISOString());
  else if (s.format === 'date') base = fc.date({ min: new Date('2000-01-01T00:00:00Z'), max: new Date('2100-01-01T00:00:00Z'), noInvalidDate: true }).map((d) => d.toISOString().slice(0, 10));
  else if (s.format === 'email') base = fc.emailAddress().filter((e) => e.length <= (s.maxLength ?? 254));
  else if (s.format === 'time-zone') base = fc.constantFrom(...TIME_ZONES);
  else if (s.format === 'uri') base = fc.webUrl({ validSchemes: ['https'] });
  else if (typeof s.pattern === 'string') base = fc.stringMatching(new RegExp(s.pattern)).map((v) => (v.length > (s.maxLength ?? Infinity) ? v.slice(0, s.maxLength) : v));
  else base = fc.oneof(fc.string({ minLength, maxLength, unit: 'grapheme-ascii' }), fc.string({ minLength, maxLength, unit: 'grapheme' }));
  const examples = Array.isArray(s.examples) ? s.examples.filter((e: unknown) => typeof e === 'string') : [];
  return examples.length ? fc.oneof({ weight: 3, arbitrary: base }, { weight: 1, arbitrary: fc.constantFrom(...examples) }) : base;
}

function integerArbitrary(s: Schema): fc.Arbitrary<number> {
  const min = s.minimum ?? -1_000;
  const max = s.maximum ?? 1_000_000;
  return fc.bigInt({ min: BigInt(Math.ceil(min)), max: BigInt(Math.floor(max)) }).map(Number);
}

function objectArbitrary(s: Schema, pool: IdPool, depth: number): fc.Arbitrary<Record<string, unknown>> {
  const props = (s.properties ?? {}) as Record<string, Schema>;
  const required = (s.required ?? []) as string[];
  const record = fc.record(Object.fromEntries(Object.entries(props).map(([k, v]) => [k, schemaArbitrary(v, pool, depth + 1)])), { requiredKeys: required.filter((k) => k in props) });
  let out: fc.Arbitrary<Record<string, unknown>> = record;
  if (s.additionalProperties && typeof s.additionalProperties === 'object') {
    const key = s.propertyNames?.pattern ? fc.stringMatching(new RegExp(s.propertyNames.pattern)) : fc.string({ minLength: 1, maxLength: 20 });
    const extra = fc.dictionary(key, schemaArbitrary(s.additionalProperties, pool, depth + 1), { maxKeys: Math.min(s.maxProperties ?? 3, 3) });
    out = fc.tuple(record, extra).map(([a, b]) => ({ ...b, ...a }));
  }
  if (s.minProperties) out = out.filter((o) => Object.keys(o).length >= s.minProperties);
  return out;
}

/** Values shaped by `s` (not always valid: patterns are cut to length, cross-field rules ignored). */
export function schemaArbitrary(s: Schema | undefined, pool: IdPool, depth = 0): fc.Arbitrary<unknown> {
  if (!s || Object.keys(s).every((k) => ANNOTATIONS.has(k))) return fc.jsonValue({ maxDepth: 2 });
  if ('const' in s) return fc.constant(s.const);
  if (Array.isArray(s.enum)) return fc.constantFrom(...s.enum);
  const branches = s.oneOf ?? s.anyOf;
  if (Array.isArray(branches)) {
    const { oneOf: _o, anyOf: _a, ...rest } = s;
    return fc.oneof(...branches.map((b: Schema) => schemaArbitrary({ ...rest, ...b }, pool, depth)));
  }
  const types: string[] = Array.isArray(s.type) ? s.type : s.type ? [s.type] : s.properties ? ['object'] : [];
  if (types.length === 0) return fc.jsonValue({ maxDepth: 2 });
  if (types.length > 1) return fc.oneof(...types.map((type) => schemaArbitrary({ ...s, type }, pool, depth)));
  switch (types[0]) {
    case 'null': return fc.constant(null);
    case 'boolean': return fc.boolean();
    case 'integer': return integerArbitrary(s);
    case 'number': return fc.double({ min: s.minimum ?? -1e6, max: s.maximum ?? 1e6, noNaN: true, noDefaultInfinity: true });
    case 'string': return stringArbitrary(s, pool);
    case 'array': {
      const minLength = s.minItems ?? 0;
      const maxLength = Math.max(minLength, Math.min(s.maxItems ?? 4, 4));
      const items = schemaArbitrary(s.items, pool, depth + 1);
      return s.uniqueItems ? fc.uniqueArray(items, { minLength, maxLength, selector: (v) => JSON.stringify(v) }) : fc.array(items, { minLength, maxLength });
    }
    case 'object': return depth > 6 ? fc.constant({}) : objectArbitrary(s, pool, depth);
    default: return fc.jsonValue({ maxDepth: 2 });
  }
}

/** Strings that have broken services before: NUL, lone surrogates, RTL overrides, combining marks, injections, templates. */
export const NASTY_STRINGS = [
  '', ' ', '\u0000', 'a\u0000b', '\ud800', '\udfff\ud800', '\u202eevil', 'Z\u0351\u036b\u0343\u036a\u0302\u036b', '\r\n\t', '\ufeff', '\u2028\u2029',
  '𝕳𝖊𝖑𝖑𝖔 👩‍👩‍👧‍👦', 'ﷺ', "' OR '1'='1", "'; DROP TABLE contacts; --", '"; --', '\\', '{{constructor}}', '{{__proto__}}', '{first_name}', '${7*7}',
  '../../../../etc/passwd', '%00', '%s%s%s%n', '<script>alert(1)</script>', '1e999', 'NaN', 'Infinity', '-0', 'null', 'undefined', 'true',
  '9'.repeat(40), '-9223372036854775809', '2025-02-30T25:61:61Z', '0000-00-00', '+99999-01-01T00:00:00Z',
];

/** A value of the wrong kind, size or content, for anywhere in a body. */
export function hostileValue(pool: IdPool): fc.Arbitrary<unknown> {
  return fc.oneof(
    fc.constantFrom<unknown>(null, true, false, 0, -1, 1.5, 1e308, -1e308, 2 ** 53 + 2, -(2 ** 63), [], {}, [null], [1, 'a', {}], { a: { b: [] } }),
    fc.constantFrom(...NASTY_STRINGS),
    fc.string({ unit: 'binary', maxLength: 40 }),
    fc.string({ unit: 'grapheme', minLength: 1, maxLength: 40 }),
    fc.integer({ min: 2_000, max: 200_000 }).map((n) => 'x'.repeat(n)),
    foreignIdArbitrary(pool),
  );
}

/** Field names that are not in any schema, including ones that reach for the prototype. */
export const HOSTILE_KEYS = ['__proto__', 'constructor', 'prototype', '', ' ', 'a.b', 'x\u0000y', 'id', 'workspace_id', 'created_at', '$where', 'toString', '💥'];
