/**
 * The ticket workflow of SPEC §2.1 as pure functions (src/tickets/ticket-status.ts), plus
 * the small pure helpers tickets and messages use: tags/custom fields (src/lib/tags.ts) and
 * message variables (src/messages/template.ts).
 */
import assert from 'node:assert/strict';
import { mergeCustomFields, normalizeTags } from '../../src/lib/tags.js';
import { renderVariables, type RecipientValues } from '../../src/messages/template.js';
import {
  applyTransition, canTransition, isReopen, refusal, STATUSES, statusAfterAgentReply, statusAfterCustomerMessage,
  type StatusFields, type TicketStatus,
} from '../../src/tickets/ticket-status.js';

/** SPEC §2.1, written out independently of the code under test. */
const SPEC_ALLOWED: Record<TicketStatus, TicketStatus[]> = {
  open: ['in_progress', 'waiting_on_customer', 'resolved'],
  in_progress: ['open', 'waiting_on_customer', 'resolved'],
  waiting_on_customer: ['open', 'in_progress', 'resolved'],
  resolved: ['closed', 'open'],
  closed: [],
};

const PAIRS = STATUSES.flatMap((from) => STATUSES.map((to) => ({ from, to, allowed: SPEC_ALLOWED[from].includes(to) })));

describe('ticket workflow (SPEC §2.1)', () => {
  it('knows exactly the five statuses of the spec', () => {
    assert.deepEqual([...STATUSES], ['open', 'in_progress', 'waiting_on_customer', 'resolved', 'closed']);
    assert.equal(PAIRS.length, 25);
    assert.equal(PAIRS.filter((p) => p.allowed).length, 11);
  });

  describe('canTransition and refusal for every from/to pair', () => {
    for (const { from, to, allowed } of PAIRS) {
      it(`${allowed ? 'allows' : 'refuses'} ${from} → ${to}`, () => {
        assert.equal(canTransition(from, to), allowed);
        const why = refusal(from, to);
        if (allowed) {
          assert.equal(why, null);
        } else {
          assert.equal(typeof why, 'string');
          assert.ok(why!.trim().length > 10, `a message a client can act on, got ${JSON.stringify(why)}`);
          assert.ok(why!.includes(to) || why!.includes(from), `names the statuses involved: ${why}`);
        }
      });
    }
  });

  describe('refusal messages', () => {
    it('says a ticket is already in the status it is asked to move to', () => {
      for (const s of STATUSES) assert.match(refusal(s, s)!, new RegExp(`already ${s}`));
    });

    it('says closed is final for every move out of closed', () => {
      for (const to of STATUSES.filter((s) => s !== 'closed')) assert.match(refusal('closed', to)!, /closed.*final/i);
    });

    it('says only a resolved ticket can be closed', () => {
      for (const from of ['open', 'in_progress', 'waiting_on_customer'] as const) {
        assert.match(refusal(from, 'closed')!, /only a resolved ticket can be closed/i);
      }
    });

    it('lists where a resolved ticket can go instead of in_progress or waiting_on_customer', () => {
      for (const to of ['in_progress', 'waiting_on_customer'] as const) {
        const why = refusal('resolved', to)!;
        assert.match(why, /closed/);
        assert.match(why, /open/);
      }
    });
  });

  describe('isReopen', () => {
    for (const { from, to } of PAIRS) {
      const expected = from === 'resolved' && to === 'open';
      it(`${expected ? 'is' : 'is not'} a reopen: ${from} → ${to}`, () => assert.equal(isReopen(from, to), expected));
    }
  });
});

describe('applyTransition', () => {
  const at = new Date('2026-11-21T12:00:00.000Z');
  const earlier = new Date('2026-11-20T08:00:00.000Z');
  const fields = (status: TicketStatus, over: Partial<StatusFields> = {}): StatusFields => ({
    status, resolvedAt: null, closedAt: null, reopenedCount: 0, ...over,
  });
  /** Plausible fields for a ticket sitting in `status`. */
  const current = (status: TicketStatus): StatusFields => {
    if (status === 'resolved') return fields('resolved', { resolvedAt: earlier });
    if (status === 'closed') return fields('closed', { resolvedAt: earlier, closedAt: earlier });
    return fields(status);
  };

  describe('every allowed pair', () => {
    for (const { from, to } of PAIRS.filter((p) => p.allowed)) {
      it(`moves ${from} → ${to} and sets the timestamps of the new status`, () => {
        const out = applyTransition(current(from), to, at);
        assert.equal(out.status, to);
        if (to === 'resolved') assert.deepEqual(out.resolvedAt, at);
        else if (to === 'closed') assert.deepEqual(out.resolvedAt, earlier, 'closing keeps when it was resolved');
        else assert.equal(out.resolvedAt, null);
        assert.deepEqual(out.closedAt, to === 'closed' ? at : null);
        assert.equal(out.reopenedCount, isReopen(from, to) ? 1 : 0);
      });
    }
  });

  describe('every refused pair', () => {
    for (const { from, to } of PAIRS.filter((p) => !p.allowed)) {
      it(`throws on ${from} → ${to}`, () => {
        assert.throws(() => applyTransition(current(from), to, at), /refused transition/);
      });
    }
  });

  it('sets resolved_at when a ticket is resolved', () => {
    assert.deepEqual(applyTransition(fields('in_progress'), 'resolved', at).resolvedAt, at);
  });

  it('sets closed_at when a resolved ticket is closed, keeping resolved_at', () => {
    const out = applyTransition(fields('resolved', { resolvedAt: earlier }), 'closed', at);
    assert.deepEqual(out, { status: 'closed', resolvedAt: earlier, closedAt: at, reopenedCount: 0 });
  });

  it('counts a reopen and clears resolved_at', () => {
    const out = applyTransition(fields('resolved', { resolvedAt: earlier, reopenedCount: 2 }), 'open', at);
    assert.deepEqual(out, { status: 'open', resolvedAt: null, closedAt: null, reopenedCount: 3 });
  });

  it('does not count moves between working statuses as reopens', () => {
    let t = fields('open', { reopenedCount: 1 });
    for (const to of ['in_progress', 'waiting_on_customer', 'open', 'resolved'] as const) t = applyTransition(t, to, at);
    assert.equal(t.reopenedCount, 1);
  });

  it('counts every reopen of a ticket resolved several times', () => {
    let t = fields('open');
    for (let i = 0; i < 3; i++) {
      t = applyTransition(t, 'resolved', at);
      t = applyTransition(t, 'open', at);
    }
    assert.equal(t.reopenedCount, 3);
    assert.equal(t.resolvedAt, null);
  });

  it('does not change the fields it was given', () => {
    const before = fields('resolved', { resolvedAt: earlier });
    const copy = structuredClone(before);
    applyTransition(before, 'open', at);
    assert.deepEqual(before, copy);
  });
});

describe('automatic moves', () => {
  describe('statusAfterAgentReply', () => {
    const expected: Record<TicketStatus, TicketStatus | null> = {
      open: 'waiting_on_customer',
      in_progress: 'waiting_on_customer',
      waiting_on_customer: null,
      resolved: null,
      closed: null,
    };
    for (const s of STATUSES) {
      it(`${expected[s] ? `moves ${s} to ${expected[s]}` : `leaves ${s} as it is`} on a public agent reply`, () => {
        assert.equal(statusAfterAgentReply(s), expected[s]);
      });
    }

    it('only ever proposes allowed moves', () => {
      for (const s of STATUSES) {
        const to = statusAfterAgentReply(s);
        if (to) assert.ok(canTransition(s, to), `${s} → ${to}`);
      }
    });
  });

  describe('statusAfterCustomerMessage', () => {
    const cases: { current: TicketStatus; assigned: boolean; reopenResolved: boolean; to: TicketStatus | null }[] = [];
    for (const current of STATUSES) {
      for (const assigned of [true, false]) {
        for (const reopenResolved of [true, false]) {
          let to: TicketStatus | null = null;
          if (current === 'waiting_on_customer') to = assigned ? 'in_progress' : 'open';
          if (current === 'resolved' && reopenResolved) to = 'open';
          cases.push({ current, assigned, reopenResolved, to });
        }
      }
    }
    for (const c of cases) {
      const who = c.assigned ? 'assigned' : 'unassigned';
      const reopen = c.reopenResolved ? 'reopen on reply' : 'no reopen on reply';
      it(`${c.to ? `moves ${c.current} to ${c.to}` : `leaves ${c.current} as it is`} (${who}, ${reopen})`, () => {
        assert.equal(statusAfterCustomerMessage(c.current, { assigned: c.assigned, reopenResolved: c.reopenResolved }), c.to);
      });
    }

    it('only ever proposes allowed moves', () => {
      for (const c of cases) {
        const to = statusAfterCustomerMessage(c.current, c);
        if (to) assert.ok(canTransition(c.current, to), `${c.current} → ${to}`);
      }
    });

    it('never moves a closed ticket: the next message starts a new ticket', () => {
      for (const c of cases.filter((x) => x.current === 'closed')) assert.equal(statusAfterCustomerMessage('closed', c), null);
    });
  });
});

describe('normalizeTags', () => {
  it('trims and lower-cases', () => {
    assert.deepEqual(normalizeTags(['  VIP ', 'Billing', 'refund\t']), ['vip', 'billing', 'refund']);
  });

  it('drops duplicates after normalising, keeping first-seen order', () => {
    assert.deepEqual(normalizeTags(['b', 'A', 'a', ' B ', 'c', 'A']), ['b', 'a', 'c']);
  });

  it('returns an empty list for no tags', () => {
    assert.deepEqual(normalizeTags([]), []);
  });

  it('does not change its input', () => {
    const input = ['X', 'x'];
    normalizeTags(input);
    assert.deepEqual(input, ['X', 'x']);
  });
});

describe('mergeCustomFields', () => {
  it('adds new fields and reports a change', () => {
    assert.deepEqual(mergeCustomFields({ a: 1 }, { b: 'two' }), { value: { a: 1, b: 'two' }, changed: true });
  });

  it('overwrites a field with a different value', () => {
    assert.deepEqual(mergeCustomFields({ plan: 'free' }, { plan: 'pro' }), { value: { plan: 'pro' }, changed: true });
  });

  it('removes a field given as null', () => {
    assert.deepEqual(mergeCustomFields({ a: 1, b: 2 }, { a: null }), { value: { b: 2 }, changed: true });
  });

  it('reports no change for null on a field that does not exist', () => {
    assert.deepEqual(mergeCustomFields({ a: 1 }, { missing: null }), { value: { a: 1 }, changed: false });
  });

  it('reports no change when every value is already set', () => {
    assert.deepEqual(mergeCustomFields({ a: 1, b: true, c: 'x' }, { a: 1, b: true, c: 'x' }), { value: { a: 1, b: true, c: 'x' }, changed: false });
  });

  it('tells values of different types apart (1 vs "1", false vs 0)', () => {
    assert.equal(mergeCustomFields({ a: 1 }, { a: '1' }).changed, true);
    assert.equal(mergeCustomFields({ a: false }, { a: 0 }).changed, true);
  });

  it('applies a mixed patch: set, overwrite and remove at once', () => {
    const out = mergeCustomFields({ keep: 1, change: 'old', drop: true }, { change: 'new', drop: null, add: 3 });
    assert.deepEqual(out, { value: { keep: 1, change: 'new', add: 3 }, changed: true });
  });

  it('starts from an empty object for a new record, ignoring nulls', () => {
    assert.deepEqual(mergeCustomFields({}, { a: 1, b: null }), { value: { a: 1 }, changed: true });
  });

  it('does not change the current object', () => {
    const current = { a: 1, b: 2 };
    mergeCustomFields(current, { a: null, c: 3 });
    assert.deepEqual(current, { a: 1, b: 2 });
  });
});

describe('renderVariables', () => {
  const full: RecipientValues = { firstName: 'Sarah', lastName: 'Connor', name: 'Sarah J. Connor', username: 'sarahc' };
  const none: RecipientValues = { firstName: null, lastName: null, name: null, username: null };

  it('fills first_name, last_name and username', () => {
    assert.equal(renderVariables('Hi {first_name} {last_name} (@{username})!', full), 'Hi Sarah Connor (@sarahc)!');
  });

  it('fills every occurrence of a variable', () => {
    assert.equal(renderVariables('{first_name}, {first_name}!', full), 'Sarah, Sarah!');
  });

  it('falls back to the full name when there is no first name', () => {
    assert.equal(renderVariables('Hi {first_name}', { ...full, firstName: null }), 'Hi Sarah J. Connor');
  });

  it('fills missing values with nothing', () => {
    assert.equal(renderVariables('[{first_name}][{last_name}][{username}]', none), '[][][]');
  });

  it('leaves other {words} and text without variables as written', () => {
    assert.equal(renderVariables('Order {order_id} for {first_name} {FIRST_NAME} { first_name }', full), 'Order {order_id} for Sarah {FIRST_NAME} { first_name }');
    assert.equal(renderVariables('no variables here', full), 'no variables here');
  });

  it('does not expand variables that appear inside filled-in values', () => {
    assert.equal(renderVariables('{first_name} {last_name}', { ...full, firstName: '{last_name}' }), '{last_name} Connor');
  });

  it('does not treat $ patterns in values specially', () => {
    assert.equal(renderVariables('Hi {first_name}', { ...full, firstName: "$& $' $1" }), "Hi $& $' $1");
  });
});
