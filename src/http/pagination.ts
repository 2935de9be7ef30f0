/** The API's side of pagination (SPEC §4.1): the query parameters, the page schema, presenting a page. */
import type { Page } from '../kernel/pagination.js';

export const paginationQueryProperties = {
  limit: { type: 'integer', minimum: 1, maximum: 200, default: 50, description: 'Page size (1-200)' },
  offset: { type: 'integer', minimum: 0, maximum: 100000, default: 0, description: 'Rows to skip; use `cursor` for deep pages' },
  cursor: { type: 'string', minLength: 1, maxLength: 1000, description: 'The `next_cursor` of the previous page' },
} as const;

export const pageSchema = (item: Record<string, unknown>) => ({
  type: 'object',
  additionalProperties: false,
  required: ['items', 'total', 'limit', 'offset', 'has_more', 'next_cursor'],
  properties: {
    items: { type: 'array', items: item },
    total: { type: 'integer', minimum: 0 },
    limit: { type: 'integer' },
    offset: { type: 'integer' },
    has_more: { type: 'boolean' },
    next_cursor: { type: ['string', 'null'] },
  },
});

/** A page of domain objects as the API shows it: the same page, each item presented. */
export function presentPage<T, J>(page: Page<T>, present: (item: T) => J): Page<J> {
  return { ...page, items: page.items.map(present) };
}

/**
 * A page whose items are already JSON text (built by the database), as the response body: the
 * same bytes JSON.stringify(page) would give, keys in Page's order.
 */
export function pageBody(page: Omit<Page<never>, 'items'> & { items: string }): string {
  return `{"items":${page.items},"total":${page.total},"limit":${page.limit},"offset":${page.offset},"has_more":${page.has_more},"next_cursor":${JSON.stringify(page.next_cursor)}}`;
}
