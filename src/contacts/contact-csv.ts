/**
 * The contacts CSV export, streamed: rows are read in batches and written as they come, so
 * memory stays flat however many contacts there are, and no connection is held while the
 * client reads slowly.
 */
import { stringify } from 'csv-stringify';
import { pipeline, Readable } from 'node:stream';
import type { Contact } from './contact.js';

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

const CLIENT_LEFT = new Set(['ERR_STREAM_PREMATURE_CLOSE', 'ABORT_ERR']);

const PHONE = /^\+?[0-9][0-9 ().-]{2,30}$/;

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
    // A phone number as the API accepts it (digits, spaces, ( ) . - and a leading +) is kept as
    // typed; anything else (written by another path) gets the guard like every other cell.
    PHONE.test(c.phone ?? '') ? c.phone! : text(c.phone),
    text(c.tags.join(';')),
    Object.keys(c.customFields).length ? text(JSON.stringify(c.customFields)) : '',
    String(c.blocked),
    c.createdAt.toISOString(),
    c.updatedAt.toISOString(),
  ];
}

/**
 * A readable CSV stream (header first) over the batches. A failure while streaming (the
 * status line is long gone) ends the response early and is reported to `onError`; a client
 * that leaves stops the reads.
 */
export function contactsCsv(batches: AsyncIterable<Contact[]>, onError: (err: Error) => void): Readable {
  async function* records() {
    for await (const batch of batches) for (const c of batch) yield toRecord(c);
  }
  return pipeline(Readable.from(records()), stringify({ header: true, columns: [...CSV_COLUMNS] }), (err) => {
    // A reader that went away (client disconnect) is not a failure worth reporting.
    if (err && !CLIENT_LEFT.has((err as NodeJS.ErrnoException).code ?? '')) onError(err);
  });
}
