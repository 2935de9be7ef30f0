import assert from 'node:assert/strict';
import { MAX_JSON_DEPTH, nestsDeeperThan } from '../../src/http/json-depth.js';
import { AppError } from '../../src/kernel/errors.js';
import { check, compile } from '../../src/kernel/validation.js';

/** `[[[…]]]` or `{"a":{"a":…}}`, `depth` levels, built without recursion. */
function nested(kind: 'array' | 'object', depth: number, leaf: unknown = 1): unknown {
  let v: unknown = leaf;
  for (let i = 0; i < depth; i++) v = kind === 'array' ? [v] : { a: v };
  return v;
}

describe('walks over client JSON', () => {
  describe('nestsDeeperThan', () => {
    it('counts each array and object as a level; scalars are none', () => {
      assert.equal(nestsDeeperThan(1, 0), false);
      assert.equal(nestsDeeperThan('x', 0), false);
      assert.equal(nestsDeeperThan(null, 0), false);
      assert.equal(nestsDeeperThan({}, 0), true);
      assert.equal(nestsDeeperThan({}, 1), false);
      assert.equal(nestsDeeperThan({ a: [1, { b: [] }] }, 3), true);
      assert.equal(nestsDeeperThan({ a: [1, { b: [] }] }, 4), false);
    });

    it('is exact at the limit, for arrays, objects and a deep branch beside shallow ones', () => {
      for (const kind of ['array', 'object'] as const) {
        assert.equal(nestsDeeperThan(nested(kind, MAX_JSON_DEPTH), MAX_JSON_DEPTH), false, kind);
        assert.equal(nestsDeeperThan(nested(kind, MAX_JSON_DEPTH + 1), MAX_JSON_DEPTH), true, kind);
      }
      const wide = { shallow: [1, 2, 3], other: { x: 1 }, deep: nested('array', MAX_JSON_DEPTH) };
      assert.equal(nestsDeeperThan(wide, MAX_JSON_DEPTH), true);
    });

    it('walks 100,000 levels without overflowing the stack', () => {
      assert.equal(nestsDeeperThan(nested('array', 100_000), MAX_JSON_DEPTH), true);
      assert.equal(nestsDeeperThan(nested('object', 100_000), 200_000), false);
    });
  });

  describe('the NUL check of check()', () => {
    const anything = compile({}, 'body');

    it('finds a NUL 10,000 levels down instead of overflowing the stack', () => {
      const deep = nested('array', 10_000, 'a\u0000b');
      const err = (() => { try { check(anything, deep, 'body'); } catch (e) { return e; } return null; })();
      assert.ok(err instanceof AppError, `an AppError, not ${String(err)}`);
      assert.equal(err.code, 'validation_error');
      assert.equal(err.extra.details!.length, 1);
      assert.ok(err.extra.details![0].field.startsWith('[0][0][0]'));
    });

    it('reports keys and values in document order, at most 20', () => {
      const body = { a: 'x\u0000', ['k\u0000']: 'fine', list: ['ok', '\u0000', { deep: '\u0000' }], z: '\u0000' };
      const err = (() => { try { check(anything, body, 'body'); } catch (e) { return e as AppError; } return null; })();
      assert.deepEqual(err!.extra.details!.map((d) => d.field), ['a', 'k\u0000', 'list[1]', 'list[2].deep', 'z']);
      const many = Array.from({ length: 50 }, () => '\u0000');
      const capped = (() => { try { check(anything, many, 'body'); } catch (e) { return e as AppError; } return null; })();
      assert.equal(capped!.extra.details!.length, 20);
      assert.equal(capped!.extra.details![0].field, '[0]');
      const top = (() => { try { check(anything, '\u0000', 'query'); } catch (e) { return e as AppError; } return null; })();
      assert.equal(top!.extra.details![0].field, 'query');
    });
  });
});
