/**
 * The one template engine (src/lib/template.ts) with its two syntaxes, the canned-response
 * variables and their checks, and "did you mean" for shortcuts. Pure: no database.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { closestShortcuts, templateErrors } from '../../src/canned/canned.js';
import { CANNED_VARIABLES, cannedValues, type VariableSources } from '../../src/canned/canned-variables.js';
import { DOUBLE_BRACES, parseTemplate, renderTemplate, SINGLE_BRACES, templateProblems } from '../../src/lib/template.js';

const values = (o: Record<string, string | null>) => new Map(Object.entries(o));

describe('template engine', () => {
  describe('double braces (canned responses, notices)', () => {
    it('fills variables, with spaces inside the braces allowed', () => {
      const r = renderTemplate('Hi {{name}}, about #{{ number }}.', values({ name: 'Sarah', number: '42' }));
      assert.deepEqual(r, { text: 'Hi Sarah, about #42.', missing: [] });
    });

    it('uses the fallback when the value is empty, blank or absent, and lists only those without one as missing', () => {
      const v = values({ first: null, blank: '   ', empty: '', agent: null });
      const r = renderTemplate('{{first|there}} {{ blank | friend }} {{empty|}}[{{agent}}][{{agent}}]', v);
      assert.deepEqual(r, { text: 'there friend [][]', missing: ['agent'] });
    });

    it('keeps a fallback\'s inner spaces and punctuation; the first pipe splits', () => {
      const r = renderTemplate('{{name|dear customer, hello|x}}', values({ name: null }));
      assert.equal(r.text, 'dear customer, hello|x');
    });

    it('trims values and escapes nothing (plain text out: <b>, &, $& stay as written)', () => {
      const r = renderTemplate('{{v}}', values({ v: '  <b>Tom & "Jerry"</b> $& $1  ' }));
      assert.equal(r.text, '<b>Tom & "Jerry"</b> $& $1');
    });

    it('renders in one pass: a value that looks like a placeholder stays as written', () => {
      const r = renderTemplate('{{a}} {{b}}', values({ a: '{{b}}', b: 'B' }));
      assert.equal(r.text, '{{b}} B');
      fc.assert(fc.property(fc.string(), (v) => {
        assert.equal(renderTemplate('[{{a}}]', values({ a: v })).text, `[${v.trim()}]`);
      }));
    });

    it('reads only the names it is given: object properties and prototype names are just unknown', () => {
      for (const name of ['constructor', '__proto__', 'toString', 'hasOwnProperty', 'a.length', 'a["x"]', 'process.env']) {
        const text = `x {{${name}}} y`;
        assert.equal(renderTemplate(text, values({ a: 'A' })).text, text, name);
        assert.deepEqual(templateProblems(text, ['a']).unknown, [name], name);
      }
    });

    it('leaves names it has no value for as written', () => {
      assert.equal(renderTemplate('{{a}} {{zzz|fb}}', values({ a: 'A' })).text, 'A {{zzz|fb}}');
    });

    it('finds unknown names (once each, in order), empty braces and an unclosed {{', () => {
      assert.deepEqual(templateProblems('{{b}} {{a}} {{x}} {{b}} {{ y | z }}', ['a']), { unknown: ['b', 'x', 'y'], unclosed: false });
      assert.deepEqual(templateProblems('{{}} and {{ | fb }}', ['a']), { unknown: [''], unclosed: false });
      assert.deepEqual(templateProblems('Hi {{a}}, see {{a', ['a']), { unknown: [], unclosed: true });
      assert.deepEqual(templateProblems('no variables { } here }}', ['a']), { unknown: [], unclosed: false });
    });

    it('parsing loses nothing: text and raw placeholders put back together are the input', () => {
      fc.assert(fc.property(fc.string({ unit: fc.constantFrom('{', '}', '|', 'a', ' ', 'b', '\n') }), (text) => {
        const back = parseTemplate(text, DOUBLE_BRACES).segments.map((s) => (s.kind === 'text' ? s.text : s.raw)).join('');
        assert.equal(back, text);
      }));
    });

    it('rendering without any value for the names used gives the text back unchanged', () => {
      fc.assert(fc.property(fc.string(), (text) => {
        assert.equal(renderTemplate(text, new Map()).text, text);
      }));
    });
  });

  describe('single braces (proactive messages)', () => {
    it('only {word} is a placeholder: JSON, spaces and double braces stay text', () => {
      const v = values({ first_name: 'Sarah' });
      assert.equal(renderTemplate('Hi {first_name}! {"a":1} { first_name } {other}', v, SINGLE_BRACES).text, 'Hi Sarah! {"a":1} { first_name } {other}');
      assert.equal(renderTemplate('{{first_name}}', v, SINGLE_BRACES).text, '{Sarah}');
    });

    it('has no fallbacks: a pipe is not part of a word', () => {
      assert.equal(renderTemplate('{first_name|x}', values({ first_name: 'S' }), SINGLE_BRACES).text, '{first_name|x}');
    });

    it('parsing loses nothing', () => {
      fc.assert(fc.property(fc.string({ unit: fc.constantFrom('{', '}', '_', 'a', 'Z', ' ') }), (text) => {
        const back = parseTemplate(text, SINGLE_BRACES).segments.map((s) => (s.kind === 'text' ? s.text : s.raw)).join('');
        assert.equal(back, text);
      }));
    });
  });
});

describe('canned-response variables', () => {
  const sources = (o: Partial<VariableSources> = {}): VariableSources => ({
    contact: { name: 'Sarah J. Connor', firstName: 'Sarah', lastName: 'Connor' },
    ticket: { number: 42, subject: 'Refund please' },
    agent: { name: 'Ann Lee' },
    workspace: { name: 'Acme' },
    ...o,
  });

  it('gives every listed variable a value and nothing else', () => {
    const v = cannedValues(sources());
    assert.deepEqual([...v.keys()].sort(), [...CANNED_VARIABLES].sort());
    assert.deepEqual(Object.fromEntries(v), {
      customer_name: 'Sarah J. Connor', customer_first_name: 'Sarah', ticket_number: '42', ticket_subject: 'Refund please',
      agent_name: 'Ann Lee', agent_first_name: 'Ann', workspace_name: 'Acme',
    });
  });

  it('derives names from what the contact has; no agent leaves the agent variables empty', () => {
    const onlyName = cannedValues(sources({ contact: { name: 'Bob Stone', firstName: null, lastName: null }, agent: null }));
    assert.equal(onlyName.get('customer_first_name'), 'Bob');
    assert.equal(onlyName.get('agent_name'), null);
    assert.equal(onlyName.get('agent_first_name'), null);
    const parts = cannedValues(sources({ contact: { name: null, firstName: 'Li', lastName: 'Wu' } }));
    assert.equal(parts.get('customer_name'), 'Li Wu');
    const none = cannedValues(sources({ contact: { name: null, firstName: null, lastName: null } }));
    assert.equal(none.get('customer_name'), null);
    assert.equal(none.get('customer_first_name'), null);
  });

  it('templateErrors names unknown variables per field, an empty {{}} and an unclosed {{', () => {
    assert.deepEqual(templateErrors({ title: 'Hi {{customer_first_name|there}}', body: 'Order {{ticket_number}} by {{agent_name}}' }), []);
    const errors = templateErrors({ title: '{{customer}}', body: '{{order_id}} {{}} {{ticket_number' });
    assert.deepEqual(errors.map((e) => [e.field, e.received ?? null]), [['title', 'customer'], ['body', 'order_id'], ['body', ''], ['body', null]]);
    assert.match(errors[0].error, /unknown variable \{\{customer\}\}.*\{\{customer_name\}\}/);
    assert.match(errors[3].error, /without a closing/);
  });
});

describe('closestShortcuts', () => {
  const all = ['refund', 'refund-late', 'refunds', 'shipping', 'hello', 'welcome'];

  it('prefers shortcuts the input begins, then contains, then a few edits away; at most three', () => {
    assert.deepEqual(closestShortcuts('ref', all), ['refund', 'refund-late', 'refunds']);
    assert.deepEqual(closestShortcuts('refnd', all), ['refund', 'refunds']);
    assert.deepEqual(closestShortcuts('SHIPING', all), ['shipping']);
    assert.deepEqual(closestShortcuts('ping', all), ['shipping']);
  });

  it('suggests nothing for a text far longer than any shortcut, without comparing it', () => {
    const many = Array.from({ length: 5000 }, (_, i) => `s${i}`);
    assert.deepEqual(closestShortcuts('refund '.repeat(600), many), []);
    assert.deepEqual(closestShortcuts(`${'x'.repeat(31)}yz`, ['x'.repeat(32)]), ['x'.repeat(32)], 'a typo of a 32-character shortcut still counts');
  });

  it('suggests nothing far away', () => {
    assert.deepEqual(closestShortcuts('invoice', all), []);
    assert.deepEqual(closestShortcuts('x', []), []);
  });
});
