import assert from 'node:assert/strict';
import { parse } from 'csv-parse/sync';
import type { Readable } from 'node:stream';
import { CSV_COLUMNS, contactsCsv, neutralizeFormula } from '../../src/contacts/contact-csv.js';
import type { Contact } from '../../src/contacts/contact.js';

/** The whole CSV as rows of cells (csv-parse: strict RFC 4180; throws on malformed input). */
const parseCsv = (text: string): string[][] => parse(text, { relax_column_count: true });

async function readAll(stream: Readable): Promise<string> {
  let out = '';
  for await (const chunk of stream) out += chunk.toString();
  return out;
}

let seq = 0;
function contact(over: Partial<Contact> = {}): Contact {
  seq++;
  return {
    id: `ct_01JD3Q0000000000000000${String(seq).padStart(4, '0')}`,
    workspaceId: 'ws_default',
    telegramUserId: null,
    username: null,
    name: null,
    firstName: null,
    lastName: null,
    email: null,
    phone: null,
    tags: [],
    customFields: {},
    blocked: false,
    createdAt: new Date('2026-11-21T12:00:00.000Z'),
    updatedAt: new Date('2026-11-21T12:30:00.000Z'),
    ...over,
  };
}

async function* batchesOf(...batches: Contact[][]): AsyncGenerator<Contact[]> {
  for (const b of batches) yield b;
}

/** Parsed rows as objects keyed by the header. */

/** Streaming errors are not expected in these tests: surface any. */
const fail = (err: Error) => { throw err; };
async function exportRecords(batches: AsyncIterable<Contact[]>): Promise<{ header: string[]; records: Record<string, string>[] }> {
  const rows = parseCsv(await readAll(contactsCsv(batches, fail)));
  const [header, ...data] = rows;
  for (const r of data) assert.equal(r.length, header.length, `row ${JSON.stringify(r)} has ${r.length} cells`);
  return { header, records: data.map((r) => Object.fromEntries(header.map((h, i) => [h, r[i]]))) };
}

describe('contact CSV', () => {
  describe('neutralizeFormula', () => {
    for (const cell of ['=1+1', '=HYPERLINK("http://evil.example","click")', '+1', '+SUM(A1:A2)', '-2+3', '-', '@SUM(A1)', '@', '\t=1', '\r=1']) {
      it(`prefixes ${JSON.stringify(cell)} with a single quote`, () => {
        assert.equal(neutralizeFormula(cell), `'${cell}`);
      });
    }

    for (const cell of ['', 'Sarah', 'a=b', 'x+1', 'foo@example.com', "'=already quoted", '1+1', ' plain', 'Ünïcödé']) {
      it(`leaves ${JSON.stringify(cell)} as it is`, () => {
        assert.equal(neutralizeFormula(cell), cell);
      });
    }
  });

  describe('contactsCsv', () => {
    it('writes only the header row when there are no batches', async () => {
      const text = await readAll(contactsCsv(batchesOf(), fail));
      assert.deepEqual(parseCsv(text), [[...CSV_COLUMNS]]);
    });

    it('has the documented columns in order', () => {
      assert.deepEqual([...CSV_COLUMNS], [
        'id', 'telegram_user_id', 'username', 'name', 'first_name', 'last_name', 'email', 'phone',
        'tags', 'custom_fields', 'blocked', 'created_at', 'updated_at',
      ]);
    });

    it('writes every contact of every batch, in order, skipping empty batches', async () => {
      const batches = [[contact(), contact()], [], [contact()], [contact(), contact(), contact()]];
      const { header, records } = await exportRecords(batchesOf(...batches));
      assert.deepEqual(header, [...CSV_COLUMNS]);
      assert.deepEqual(records.map((r) => r.id), batches.flat().map((c) => c.id));
    });

    it('streams thousands of rows from many batches', async () => {
      const batches = Array.from({ length: 7 }, (_, b) => Array.from({ length: 500 }, (_, i) => contact({ name: `Bulk ${b}-${i}`, telegramUserId: b * 1000 + i + 1 })));
      const { records } = await exportRecords(batchesOf(...batches));
      assert.equal(records.length, 3500);
      const all = batches.flat();
      records.forEach((r, i) => {
        assert.equal(r.id, all[i].id);
        assert.equal(r.name, all[i].name);
        assert.equal(r.telegram_user_id, String(all[i].telegramUserId));
      });
    });

    it('renders every field: nulls empty, tags joined with ;, custom fields as JSON, booleans and ISO timestamps', async () => {
      const full = contact({
        telegramUserId: 9007199254740991,
        username: 'sarah_k',
        name: 'Sarah K',
        firstName: 'Sarah',
        lastName: 'K',
        email: 'sarah@example.com',
        phone: '+1 (555) 010-0199',
        tags: ['vip', 'beta'],
        customFields: { plan: 'pro', seats: 3, trial: false },
        blocked: true,
        createdAt: new Date('2026-01-02T03:04:05.006Z'),
        updatedAt: new Date('2026-02-03T04:05:06.007Z'),
      });
      const empty = contact();
      const { records } = await exportRecords(batchesOf([full, empty]));
      assert.deepEqual(records[0], {
        id: full.id,
        telegram_user_id: '9007199254740991',
        username: 'sarah_k',
        name: 'Sarah K',
        first_name: 'Sarah',
        last_name: 'K',
        email: 'sarah@example.com',
        phone: '+1 (555) 010-0199',
        tags: 'vip;beta',
        custom_fields: '{"plan":"pro","seats":3,"trial":false}',
        blocked: 'true',
        created_at: '2026-01-02T03:04:05.006Z',
        updated_at: '2026-02-03T04:05:06.007Z',
      });
      assert.deepEqual(JSON.parse(records[0].custom_fields), full.customFields);
      assert.deepEqual(records[1], {
        id: empty.id,
        telegram_user_id: '',
        username: '',
        name: '',
        first_name: '',
        last_name: '',
        email: '',
        phone: '',
        tags: '',
        custom_fields: '',
        blocked: 'false',
        created_at: '2026-11-21T12:00:00.000Z',
        updated_at: '2026-11-21T12:30:00.000Z',
      });
    });

    it('prefixes formula-looking text cells with a single quote, but keeps the phone as typed', async () => {
      const c = contact({
        name: '=HYPERLINK("http://evil.example","x")',
        firstName: '+cmd',
        lastName: '-2+3',
        email: '@evil@example.com',
        username: '=user',
        tags: ['=sum(a1)', 'vip'],
        phone: '+1 555 0100',
      });
      const { records: [r] } = await exportRecords(batchesOf([c]));
      assert.equal(r.name, `'=HYPERLINK("http://evil.example","x")`);
      assert.equal(r.first_name, "'+cmd");
      assert.equal(r.last_name, "'-2+3");
      assert.equal(r.email, "'@evil@example.com");
      assert.equal(r.username, "'=user");
      assert.equal(r.tags, "'=sum(a1);vip");
      assert.equal(r.phone, '+1 555 0100');
    });

    it('prefixes a cell that starts with a tab or carriage return', async () => {
      const c = contact({ name: '\t=1+1', lastName: '\r=1+1' });
      const { records: [r] } = await exportRecords(batchesOf([c]));
      assert.equal(r.name, "'\t=1+1");
      assert.equal(r.last_name, "'\r=1+1");
    });

    it('round-trips commas, quotes and line breaks in text cells', async () => {
      const names = ['Doe, John', 'The "Boss"', 'two\nlines', 'crlf\r\ninside', ' padded ', '"', ',', 'a,"b",\nc'];
      const cs = names.map((name) => contact({ name, lastName: name }));
      const { records } = await exportRecords(batchesOf(cs));
      assert.deepEqual(records.map((r) => r.name), names);
      assert.deepEqual(records.map((r) => r.last_name), names);
    });

    it('fails the stream when reading a batch fails, and reports the error once', async () => {
      async function* failing(): AsyncGenerator<Contact[]> {
        yield [contact()];
        throw new Error('connection lost');
      }
      const reported: Error[] = [];
      await assert.rejects(readAll(contactsCsv(failing(), (err) => reported.push(err))), /connection lost/);
      assert.equal(reported.length, 1);
      assert.match(reported[0].message, /connection lost/);
    });

    it('stops reading batches when the reader goes away', async () => {
      let read = 0;
      async function* endless(): AsyncGenerator<Contact[]> {
        for (;;) { read++; yield Array.from({ length: 100 }, () => contact()); }
      }
      const stream = contactsCsv(endless(), fail);
      for await (const _chunk of stream) break; // the client leaves after the first chunk
      const after = read;
      await new Promise((r) => setImmediate(r));
      assert.ok(after < 50, `read ${after} batches`);
      assert.equal(read, after, 'no reads after the reader left');
    });
  });
});
