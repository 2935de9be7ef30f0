import assert from 'node:assert/strict';
import { AppError } from '../../src/kernel/errors.js';
import { paginate, type SortColumn } from '../../src/kernel/pagination.js';
import { useTestDatabase } from '../helpers/test-db.js';

describe('paginate (offset and keyset cursor)', () => {
  const db = useTestDatabase();
  before(async () => {
    await db.knex.raw(`CREATE TABLE things (id text PRIMARY KEY, grp integer NOT NULL, created_at timestamptz NOT NULL)`);
    // 137 rows with many ties on grp and created_at, so the id tie-breaker matters.
    const rows = Array.from({ length: 137 }, (_, i) => ({
      id: `t${String(i).padStart(4, '0')}`,
      grp: i % 5,
      created_at: new Date(Date.UTC(2026, 0, 1) + (i % 17) * 60_000),
    }));
    await db.knex('things').insert(rows);
  });

  const present = (r: any) => r.id as string;

  async function walkWithCursor(order: SortColumn[], limit: number, where?: (q: any) => void) {
    const seen: string[] = [];
    let cursor: string | undefined;
    for (let guard = 0; guard < 1000; guard++) {
      const q = db.knex('things').select('*');
      where?.(q);
      const page = await paginate(q, order, { limit, offset: 0, cursor }, present);
      seen.push(...page.items);
      if (!page.has_more) {
        assert.equal(page.next_cursor, null);
        return seen;
      }
      cursor = page.next_cursor!;
    }
    throw new Error('did not terminate');
  }

  for (const order of [
    [['created_at', 'desc'], ['id', 'desc']],
    [['grp', 'asc'], ['created_at', 'desc'], ['id', 'asc']],
    [['grp', 'desc'], ['id', 'asc']],
  ] as SortColumn[][]) {
    it(`walks every row exactly once, in order, by cursor (${order.map((o) => o.join(' ')).join(', ')})`, async () => {
      const all = (await db.knex('things').select('id').orderBy(order.map(([column, o]) => ({ column, order: o })))).map((r) => r.id);
      const walked = await walkWithCursor(order, 10);
      assert.deepEqual(walked, all);
    });
  }

  it('gives the same pages by offset and by cursor', async () => {
    const order: SortColumn[] = [['grp', 'asc'], ['id', 'desc']];
    const byCursor = await walkWithCursor(order, 25);
    const byOffset: string[] = [];
    for (let offset = 0; offset < 137; offset += 25) {
      const page = await paginate(db.knex('things').select('*'), order, { limit: 25, offset }, present);
      assert.equal(page.total, 137);
      assert.equal(page.offset, offset);
      assert.equal(page.has_more, offset + 25 < 137);
      byOffset.push(...page.items);
    }
    assert.deepEqual(byOffset, byCursor);
  });

  it('applies the filters to both the page and the total', async () => {
    const page = await paginate(db.knex('things').select('*').where({ grp: 2 }), [['id', 'asc']], { limit: 5, offset: 0 }, present);
    assert.equal(page.total, 27);
    assert.equal(page.items.length, 5);
    const walked = await walkWithCursor([['id', 'asc']], 4, (q) => q.where({ grp: 2 }));
    assert.equal(walked.length, 27);
  });

  it('answers an empty list with has_more false and no cursor', async () => {
    const page = await paginate(db.knex('things').select('*').where({ grp: 99 }), [['id', 'asc']], { limit: 50, offset: 0 }, present);
    assert.deepEqual(page, { items: [], total: 0, limit: 50, offset: 0, has_more: false, next_cursor: null });
  });

  it('refuses a garbage cursor, a cursor from another sort, and cursor with offset as validation errors', async () => {
    const first = await paginate(db.knex('things').select('*'), [['id', 'asc']], { limit: 5, offset: 0 }, present);
    const attempts = [
      { cursor: 'not-a-cursor', offset: 0, order: [['id', 'asc']] },
      { cursor: Buffer.from('{"s":"id:asc","v":"x"}').toString('base64url'), offset: 0, order: [['id', 'asc']] },
      { cursor: first.next_cursor!, offset: 0, order: [['id', 'desc']] },
      { cursor: first.next_cursor!, offset: 5, order: [['id', 'asc']] },
      // forged values of the wrong kind: an object, null, an array
      { cursor: Buffer.from('{"s":"id:asc","v":[{"a":1}]}').toString('base64url'), offset: 0, order: [['id', 'asc']] },
      { cursor: Buffer.from('{"s":"id:asc","v":[null]}').toString('base64url'), offset: 0, order: [['id', 'asc']] },
      { cursor: Buffer.from('{"s":"id:asc","v":[[1,2]]}').toString('base64url'), offset: 0, order: [['id', 'asc']] },
    ] as const;
    for (const a of attempts) {
      await assert.rejects(
        paginate(db.knex('things').select('*'), a.order as unknown as SortColumn[], { limit: 5, offset: a.offset, cursor: a.cursor }, present),
        (err: unknown) => err instanceof AppError && err.code === 'validation_error' && err.extra.details!.length > 0,
      );
    }
  });
});

describe('timestamp precision', () => {
  const db = useTestDatabase();
  it('stores every timestamp column with millisecond precision, so cursors (JS Dates) are exact', async () => {
    const { rows } = await db.knex.raw(`
      SELECT table_name, column_name, datetime_precision FROM information_schema.columns
      WHERE table_schema = 'public' AND data_type = 'timestamp with time zone' AND table_name NOT LIKE 'knex_%'`);
    assert.ok(rows.length > 5);
    for (const r of rows) assert.equal(r.datetime_precision, 3, `${r.table_name}.${r.column_name}`);
  });
});
