/**
 * The contacts CSV export, streamed: rows are read in batches and written as they come, so
 * memory stays flat however many contacts there are, and no connection is held while the
 * client reads slowly.
 */
import { stringify } from 'csv-stringify';
import { Readable } from 'node:stream';
import type { Contact } from './contact-store.js';

export const CSV_COLUMNS = [
  'id', 'telegram_user_id', 'username', 'name', 'first_name', 'last_name', 'email', 'phone',
  'tags', 'custom_fields', 'blocked', 'created_at', 'updated_at',
] as const;

/**
 * Spreadsheets run a cell that starts with = + - @ (or a tab/CR) as a formula: customer-
 * supplied text must not. OWASP's advice: prefix such a cell with a single quote.
 */
export function neutralizeFormula(cell: string): string {
  return /^[=+\-@\t\r]/.test(cell) ? `'${cell}` : cell;
}

function toRecord(c: Contact): string[] {
  const text = (v: string | null) => neutralizeFormula(v ?? '');
  return [
    c.id,
    c.telegramUserId === null ? '' : String(c.telegramUserId),
    text(c.username),
    text(c.name),
    text(c.firstName),
    text(c.lastName),
    text(c.email),
    // Validated to digits, spaces and ( ) . - with an optional leading +: never a formula, so kept as typed.
    c.phone ?? '',
    text(c.tags.join(';')),
    Object.keys(c.customFields).length ? text(JSON.stringify(c.customFields)) : '',
    String(c.blocked),
    c.createdAt.toISOString(),
    c.updatedAt.toISOString(),
  ];
}

/** A readable CSV stream (header first) over the batches; a failed read destroys the stream. */
export function contactsCsv(batches: AsyncIterable<Contact[]>): Readable {
  const csv = stringify({ header: true, columns: [...CSV_COLUMNS] });
  async function* records() {
    for await (const batch of batches) for (const c of batch) yield toRecord(c);
  }
  const source = Readable.from(records());
  source.on('error', (err) => csv.destroy(err));
  return source.pipe(csv);
}
