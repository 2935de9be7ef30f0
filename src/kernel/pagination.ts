/**
 * Offset/limit pagination for shallow pages, and an opaque keyset cursor for deep ones
 * (SPEC §4.1). Every page is {items,total,limit,offset,has_more,next_cursor}; the cursor
 * encodes the sort values of the last row, so page 1,000 costs what page 1 costs. Stores
 * return pages of domain objects; routes present the items.
 */
import type { Knex } from 'knex';
import { AppError } from './errors.js';

export interface Page<T> {
  items: T[];
  total: number;
  limit: number;
  offset: number;
  has_more: boolean;
  next_cursor: string | null;
}

export type SortColumn = readonly [column: string, direction: 'asc' | 'desc'];

export interface PageRequest {
  limit: number;
  offset: number;
  cursor?: string;
}

interface CursorPayload { s: string; v: unknown[] }

function sortKey(order: readonly SortColumn[]): string {
  return order.map(([c, d]) => `${c}:${d}`).join(',');
}

function encodeCursor(order: readonly SortColumn[], row: Record<string, unknown>): string {
  const v = order.map(([c]) => {
    const value = row[c.includes('.') ? c.split('.').pop()! : c];
    if (value instanceof Date) return value.toISOString();
    // A timestamptz 'infinity' sentinel reads as Infinity; PostgreSQL takes the word back.
    if (value === Infinity) return 'infinity';
    return value;
  });
  return cursorFromValues(order, v);
}

/** A cursor from the last row's sort values already as encodeCursor writes them (dates as ISO text). */
export function cursorFromValues(order: readonly SortColumn[], v: unknown[]): string {
  return Buffer.from(JSON.stringify({ s: sortKey(order), v } satisfies CursorPayload)).toString('base64url');
}

export function decodeCursor(cursor: string, order: readonly SortColumn[]): unknown[] {
  try {
    const p = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as CursorPayload;
    // A cursor is client input like any other: only the scalars we put in may come back.
    const scalar = (v: unknown) => (typeof v === 'string' && v.length <= 200) || (typeof v === 'number' && Number.isFinite(v));
    if (p.s === sortKey(order) && Array.isArray(p.v) && p.v.length === order.length && p.v.every(scalar)) return p.v;
  } catch { /* fall through */ }
  throw new AppError('validation_error', 'cursor is not valid for this list', {
    details: [{ field: 'cursor', error: 'is not a cursor this list produced (or the sort changed)' }],
  });
}

/** `(a, b) after (x, y)` for any mix of directions, as OR-ed equality prefixes. */
function whereAfter(q: Knex.QueryBuilder, order: readonly SortColumn[], values: unknown[]): void {
  // One direction throughout: a row comparison, which PostgreSQL turns into an index range
  // (the OR form below makes it walk the index from the start and filter).
  if (order.every(([, dir]) => dir === order[0][1])) {
    const columns = order.map(() => '??').join(', ');
    const params = order.map(() => '?').join(', ');
    q.whereRaw(`(${columns}) ${order[0][1] === 'asc' ? '>' : '<'} (${params})`, [...order.map(([c]) => c), ...values] as Knex.RawBinding[]);
    return;
  }
  q.where((outer) => {
    order.forEach(([column, dir], i) => {
      outer.orWhere((inner) => {
        for (let j = 0; j < i; j++) inner.where(order[j][0], values[j] as any);
        inner.where(column, dir === 'asc' ? '>' : '<', values[i] as any);
      });
    });
  });
}

/** `whereAfter` as SQL text with `?` bindings, for statements written by hand (one text per order). */
export function afterSql(order: readonly SortColumn[], values: unknown[]): { sql: string; bindings: Knex.RawBinding[] } {
  const bindings = values as Knex.RawBinding[];
  if (order.every(([, dir]) => dir === order[0][1])) {
    return { sql: `(${order.map(([c]) => c).join(', ')}) ${order[0][1] === 'asc' ? '>' : '<'} (${order.map(() => '?').join(', ')})`, bindings };
  }
  const parts: string[] = [];
  const all: Knex.RawBinding[] = [];
  order.forEach(([column, dir], i) => {
    const eq = order.slice(0, i).map(([c]) => `${c} = ?`);
    parts.push(`(${[...eq, `${column} ${dir === 'asc' ? '>' : '<'} ?`].join(' AND ')})`);
    all.push(...bindings.slice(0, i + 1));
  });
  return { sql: `(${parts.join(' OR ')})`, bindings: all };
}

/** Offset and cursor together are refused (a cursor page starts where the cursor says). */
export function checkPageRequest(req: PageRequest): void {
  if (req.cursor && req.offset) {
    throw new AppError('validation_error', 'Use either offset or cursor, not both', {
      details: [{ field: 'offset', error: 'must be 0 when cursor is given', received: req.offset }],
    });
  }
}

/**
 * Runs `query` (filters applied, no order) as one page. `order` must end in a unique
 * column (the id) so the cursor is unambiguous.
 */
export async function paginate<T>(
  query: Knex.QueryBuilder,
  order: readonly SortColumn[],
  req: PageRequest,
  /** Row → domain object (`toTicket`): routes present the items, not the store. */
  toItem: (row: any) => T,
  /** Where `total` comes from when the caller knows it cheaper than counting the query. */
  count?: () => Promise<number>,
): Promise<Page<T>> {
  checkPageRequest(req);
  const total = count ? count() : query.clone().clearSelect().clearOrder().count({ n: '*' }).then(([{ n }]: any) => Number(n));
  const pageQuery = query.clone();
  if (req.cursor) whereAfter(pageQuery, order, decodeCursor(req.cursor, order));
  for (const [column, dir] of order) pageQuery.orderBy(column, dir);
  pageQuery.limit(req.limit + 1).offset(req.cursor ? 0 : req.offset);

  const [rows, n] = await Promise.all([pageQuery, total]);
  const hasMore = rows.length > req.limit;
  const pageRows = hasMore ? rows.slice(0, req.limit) : rows;
  return {
    items: pageRows.map(toItem),
    total: Number(n),
    limit: req.limit,
    offset: req.cursor ? 0 : req.offset,
    has_more: hasMore,
    next_cursor: hasMore ? encodeCursor(order, pageRows[pageRows.length - 1]) : null,
  };
}
