/**
 * The pure parts of the Telegram side: the sliding windows that pace the send queue
 * (src/telegram/pacing.ts), what a failed Bot API call means, classified from the real error
 * strings (src/telegram/telegram-errors.ts; research/telegram-bot-api.md §1.6, §2.4), how a
 * ticket looks in the group (src/telegram/ticket-card.ts) and how commands are read
 * (src/telegram/commands.ts).
 */
import assert from 'node:assert/strict';
import { TelegramError } from 'telegraf';
import { newId } from '../../src/lib/ids.js';
import { parseCommand, parseTagChanges } from '../../src/telegram/commands.js';
import { earliestSlot, take, type WindowRule, type WindowState } from '../../src/send-queue/pacing.js';
import { blockedReason, classifyTelegramError } from '../../src/telegram/telegram-errors.js';
import { cardKeyboard, cardText, priorityKeyboard, resolutionNotice, STATUS_EMOJI, TOPIC_NAME_MAX, topicName, type CardInput } from '../../src/topics/topic-card.js';
import { STATUSES } from '../../src/tickets/ticket-status.js';

/** config/default.json telegram.sends.pacing. */
const PER_CHAT: WindowRule = { limit: 1, windowMs: 1050 };
const PER_GROUP: WindowRule = { limit: 20, windowMs: 61_000 };
const PER_BOT: WindowRule = { limit: 30, windowMs: 1020 };

const empty = (): WindowState => ({ sentAt: [], blockedUntil: null });

/** The error Telegraf throws for an answer with ok: false (a 5xx carries the HTTP status text). */
const tgError = (error_code: number, description: string, parameters?: { retry_after?: number }) =>
  new TelegramError({ error_code, description, ...(parameters ? { parameters } : {}) } as any);

/** Sends in any window of `windowMs` (closed on the left, like the fake and Telegram's rolling count). */
function maxInAnyWindow(times: number[], windowMs: number): number {
  const sorted = [...times].sort((a, b) => a - b);
  let best = 0;
  for (let i = 0; i < sorted.length; i++) {
    let n = 0;
    for (let j = i; j < sorted.length && sorted[j] < sorted[i] + windowMs; j++) n++;
    best = Math.max(best, n);
  }
  return best;
}

describe('telegram pacing (sliding windows)', () => {
  it('an empty window lets a send go now', () => {
    assert.equal(earliestSlot(empty(), PER_CHAT, 5_000), 5_000);
    assert.equal(earliestSlot(empty(), PER_GROUP, 5_000, 3), 5_000);
  });

  it('one message per second per chat: the next slot is a whole window after the last send', () => {
    const w = take(empty(), PER_CHAT, 10_000);
    assert.deepEqual(w.sentAt, [10_000]);
    assert.equal(earliestSlot(w, PER_CHAT, 10_000), 11_050);
    assert.equal(earliestSlot(w, PER_CHAT, 10_500), 11_050);
    assert.equal(earliestSlot(w, PER_CHAT, 11_049), 11_050);
    assert.equal(earliestSlot(w, PER_CHAT, 11_050), 11_050, 'the send leaves the window exactly windowMs later');
  });

  it('20 a minute per group is a sliding window, not a bucket that refills at once', () => {
    let w = empty();
    for (let i = 0; i < 20; i++) w = take(w, PER_GROUP, i * 1000); // one every second for 20 s
    assert.equal(w.sentAt.length, 20);
    // Full: the 21st waits until the oldest leaves (61 s after it), not until a minute boundary.
    assert.equal(earliestSlot(w, PER_GROUP, 20_000), 61_000);
    w = take(w, PER_GROUP, 61_000);
    assert.equal(w.sentAt.length, 20, 'the window only keeps as many times as its limit');
    assert.equal(Math.min(...w.sentAt), 1_000, 'the oldest send left the window');
    // The 22nd waits for the second-oldest: a slot per second frees up, one by one.
    assert.equal(earliestSlot(w, PER_GROUP, 61_000), 62_000);
  });

  it('a call posting several messages (album, topic set-up) needs room for all of them', () => {
    let w = empty();
    for (let i = 0; i < 18; i++) w = take(w, PER_GROUP, i * 100);
    assert.equal(earliestSlot(w, PER_GROUP, 2_000, 2), 2_000, 'two still fit');
    // Three need the oldest send to leave first.
    assert.equal(earliestSlot(w, PER_GROUP, 2_000, 3), 0 + 61_000);
    // Five need the three oldest gone: the third-oldest was at 200.
    assert.equal(earliestSlot(w, PER_GROUP, 2_000, 5), 200 + 61_000);
    const after = take(w, PER_GROUP, 2_000, 2);
    assert.equal(after.sentAt.filter((t) => t === 2_000).length, 2, 'both messages are counted');
  });

  it('a cost above the limit is capped at the limit, so it can still go once the window is empty', () => {
    let w = take(empty(), PER_CHAT, 1_000);
    assert.equal(earliestSlot(w, PER_CHAT, 1_000, 10), 2_050);
    assert.equal(earliestSlot(empty(), PER_CHAT, 1_000, 10), 1_000);
    w = take(empty(), PER_CHAT, 1_000, 10);
    assert.deepEqual(w.sentAt, [1_000]);
  });

  it('forgets sends older than the window', () => {
    let w = take(empty(), PER_BOT, 0);
    w = take(w, PER_BOT, 500);
    w = take(w, PER_BOT, 2_000);
    assert.deepEqual(w.sentAt, [2_000]);
  });

  it('a 429 pause (blocked_until) holds the key even when the window has room, and is dropped once over', () => {
    const paused: WindowState = { sentAt: [], blockedUntil: 9_000 };
    assert.equal(earliestSlot(paused, PER_BOT, 5_000), 9_000);
    assert.equal(earliestSlot(paused, PER_BOT, 9_500), 9_500);
    // A pause later than the window's own slot wins.
    const both: WindowState = { sentAt: [4_900], blockedUntil: 8_000 };
    assert.equal(earliestSlot(both, PER_CHAT, 5_000), 8_000);
    // …and an earlier one does not shorten the window.
    const early: WindowState = { sentAt: [4_900], blockedUntil: 5_100 };
    assert.equal(earliestSlot(early, PER_CHAT, 5_000), 5_950);
    assert.equal(take(paused, PER_BOT, 9_000).blockedUntil, null, 'over at its end');
    assert.equal(take(paused, PER_BOT, 5_000).blockedUntil, 9_000, 'kept while it lasts');
  });

  it('sends scheduled greedily by earliestSlot never exceed any limit in any window', () => {
    // A deterministic pseudo-random mix of costs and arrival gaps.
    let seed = 42;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    for (const rule of [PER_CHAT, PER_GROUP, PER_BOT, { limit: 3, windowMs: 100 }]) {
      let w = empty();
      let now = 0;
      const times: number[] = [];
      for (let i = 0; i < 300; i++) {
        now += Math.floor(rnd() * (rule.windowMs / rule.limit) * 1.5);
        const cost = 1 + Math.floor(rnd() * Math.min(3, rule.limit));
        const at = earliestSlot(w, rule, now, cost);
        assert.ok(at >= now);
        w = take(w, rule, at, cost);
        for (let k = 0; k < cost; k++) times.push(at);
        now = at;
      }
      assert.ok(maxInAnyWindow(times, rule.windowMs) <= rule.limit, `${rule.limit}/${rule.windowMs}ms exceeded`);
    }
  });

  it('a send claimed ahead of its slot does not make the window forget sends a claim at now must still count', () => {
    const rule: WindowRule = { limit: 2, windowMs: 100 };
    let w = take(take(empty(), rule, 0), rule, 50);
    // At 90, a row whose other window (its chat, say) holds it until 150 is claimed ahead for 150.
    w = take(w, rule, 150, 1, 90);
    // The sends at 0 and 50 left the window by 150, but not by 90: a second row claimed at 90 must
    // wait for the one at 0 to leave, or three would fall within (−10, 90].
    const at = earliestSlot(w, rule, 90);
    assert.ok(at >= 100, `placed at ${at}`);
    assert.ok(maxInAnyWindow([0, 50, 150, at], rule.windowMs) <= rule.limit);
  });

  it('sends claimed greedily, some ahead of now by up to a horizon shorter than the window, never exceed any limit in any window', () => {
    let seed = 7;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    for (const rule of [PER_CHAT, PER_GROUP, PER_BOT, { limit: 3, windowMs: 100 }]) {
      const ahead = Math.floor(rule.windowMs / 10);
      let w = empty();
      let now = 0;
      const times: number[] = [];
      for (let i = 0; i < 300; i++) {
        now += Math.floor(rnd() * (rule.windowMs / rule.limit) * 0.5);
        const cost = 1 + Math.floor(rnd() * Math.min(3, rule.limit));
        // Another of the row's windows may hold it back a little (any later time fits this one too).
        const at = earliestSlot(w, rule, now, cost) + (rnd() < 0.3 ? Math.floor(rnd() * ahead) : 0);
        if (at > now + ahead) {
          now = at - ahead; // the claim comes back when the slot is `ahead` away
          i--;
          continue;
        }
        w = take(w, rule, at, cost, now);
        for (let k = 0; k < cost; k++) times.push(at);
      }
      assert.ok(maxInAnyWindow(times, rule.windowMs) <= rule.limit, `${rule.limit}/${rule.windowMs}ms exceeded`);
    }
  });
});

describe('telegram error classification (real Bot API answers)', () => {
  it('429 Too Many Requests is a wait for retry_after seconds', () => {
    const f = classifyTelegramError(tgError(429, 'Too Many Requests: retry after 7', { retry_after: 7 }));
    assert.deepEqual(f, { kind: 'rate_limited', retryAfterSeconds: 7, reason: '429: Too Many Requests: retry after 7' });
  });

  it('a 429 without retry_after still waits (5 s)', () => {
    const f = classifyTelegramError(tgError(429, 'Too Many Requests'));
    assert.equal(f.kind, 'rate_limited');
    assert.equal((f as { retryAfterSeconds: number }).retryAfterSeconds, 5);
  });

  for (const [code, text] of [[500, 'Internal Server Error'], [502, 'Bad Gateway'], [503, 'Service Unavailable'], [504, 'Gateway Timeout']] as const) {
    it(`${code} ${text} (Telegraf's error for a non-JSON 5xx) is transient`, () => {
      assert.deepEqual(classifyTelegramError(tgError(code, text)), { kind: 'transient', reason: `${code}: ${text}` });
    });
  }

  it('a native timeout (DOMException, whose numeric code is not an HTTP status) is transient, not permanent', () => {
    const timeout = new DOMException('The operation was aborted due to timeout', 'TimeoutError');
    assert.equal(typeof (timeout as unknown as { code: unknown }).code, 'number');
    assert.equal(classifyTelegramError(timeout).kind, 'transient');
  });

  it('network failures and timeouts (no error_code) are transient', () => {
    const refused = Object.assign(new Error('request to http://127.0.0.1:1/bot/sendMessage failed, reason: connect ECONNREFUSED 127.0.0.1:1'), { name: 'FetchError', code: 'ECONNREFUSED', errno: 'ECONNREFUSED', type: 'system' });
    const aborted = Object.assign(new Error('The user aborted a request.'), { name: 'AbortError', type: 'aborted' });
    for (const err of [refused, aborted, new TypeError('fetch failed')]) {
      const f = classifyTelegramError(err);
      assert.equal(f.kind, 'transient', `${err.name}: ${err.message}`);
      assert.match(f.reason, new RegExp(err.message.slice(0, 20).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
    }
  });

  it('a deleted topic, in both spellings Telegram uses, is "topic gone"', () => {
    assert.equal(classifyTelegramError(tgError(400, 'Bad Request: message thread not found')).kind, 'topic_gone');
    assert.equal(classifyTelegramError(tgError(400, 'Bad Request: TOPIC_DELETED')).kind, 'topic_gone');
    assert.equal(classifyTelegramError(tgError(400, 'Bad Request: Message thread not found')).kind, 'topic_gone', 'descriptions are matched loosely');
  });

  it('a closed topic, and edits that change nothing', () => {
    assert.equal(classifyTelegramError(tgError(400, 'Bad Request: TOPIC_CLOSED')).kind, 'topic_closed');
    assert.equal(classifyTelegramError(tgError(400, 'Bad Request: TOPIC_NOT_MODIFIED')).kind, 'not_modified');
    const notModified = 'Bad Request: message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message';
    assert.equal(classifyTelegramError(tgError(400, notModified)).kind, 'not_modified');
  });

  it('a customer who blocked the bot, deleted their account or never started it: never retried', () => {
    const blocked = classifyTelegramError(tgError(403, 'Forbidden: bot was blocked by the user'));
    const gone = classifyTelegramError(tgError(403, 'Forbidden: user is deactivated'));
    const never = classifyTelegramError(tgError(403, "Forbidden: bot can't initiate conversation with a user"));
    assert.deepEqual(blocked, { kind: 'recipient_blocked', reason: '403: Forbidden: bot was blocked by the user' });
    assert.equal(gone.kind, 'recipient_blocked');
    assert.equal(never.kind, 'recipient_blocked');
    assert.equal(blockedReason(blocked), 'The customer has blocked the bot');
    assert.equal(blockedReason(gone), 'The customer deleted their Telegram account');
    assert.equal(blockedReason(never), 'The customer has not started the bot');
  });

  it('other 4xx are permanent, with Telegram\'s description as the reason', () => {
    for (const [code, d] of [
      [400, 'Bad Request: chat not found'],
      [400, 'Bad Request: message text is empty'],
      [400, 'Bad Request: message is too long'],
      [400, 'Bad Request: not enough rights to create a topic'],
      [400, 'Bad Request: message to copy not found'],
      [401, 'Unauthorized'],
      [403, 'Forbidden: bot was kicked from the supergroup chat'],
      [403, 'Forbidden: bot is not a member of the supergroup chat'],
      [403, "Forbidden: bot can't send messages to bots"],
    ] as const) {
      assert.deepEqual(classifyTelegramError(tgError(code, d)), { kind: 'permanent', reason: `${code}: ${d}` }, d);
    }
  });

  it('reads the raw response envelope as well as Telegraf\'s error', () => {
    const raw = { response: { ok: false, error_code: 429, description: 'Too Many Requests: retry after 3', parameters: { retry_after: 3 } } };
    assert.deepEqual(classifyTelegramError(raw), { kind: 'rate_limited', retryAfterSeconds: 3, reason: '429: Too Many Requests: retry after 3' });
  });
});

describe('ticket card and topic name', () => {
  const base = { status: 'open', number: 42, subject: 'Cannot log in' } as const;

  it('names the topic "<status emoji> #<number> · <subject>"', () => {
    assert.equal(topicName(base), '🆕 #42 · Cannot log in');
    for (const status of STATUSES) assert.ok(topicName({ ...base, status }).startsWith(`${STATUS_EMOJI[status]} #42 · `), status);
    assert.equal(new Set(Object.values(STATUS_EMOJI)).size, STATUSES.length, 'each status has its own emoji');
  });

  it('collapses whitespace (new lines cannot be in a topic name)', () => {
    assert.equal(topicName({ ...base, subject: '  Cannot\n\n log   in\t ' }), '🆕 #42 · Cannot log in');
  });

  it('cuts a long subject to Telegram\'s 128 characters with "…", never splitting an emoji', () => {
    const long = topicName({ ...base, subject: 'x'.repeat(300) });
    assert.equal(Array.from(long).length, TOPIC_NAME_MAX);
    assert.ok(long.endsWith('x…'));
    const emoji = topicName({ ...base, subject: '😀'.repeat(200) });
    assert.equal(Array.from(emoji).length, TOPIC_NAME_MAX);
    assert.ok(emoji.endsWith('😀…'), 'no lone surrogate before the ellipsis');
    assert.doesNotMatch(emoji, /[\uD800-\uDBFF](?![\uDC00-\uDFFF])/);
    const exact = `${'y'.repeat(TOPIC_NAME_MAX - Array.from('🆕 #42 · ').length)}`;
    assert.equal(topicName({ ...base, subject: exact }), `🆕 #42 · ${exact}`, 'exactly 128 is not cut');
  });

  const card: CardInput = {
    id: 'tkt_01JD0000000000000000000000', number: 7, subject: 'Refund', description: 'I was charged twice',
    status: 'waiting_on_customer', priority: 'high', category: 'Billing', tags: ['vip', 'refund'],
    customer: { name: 'Sarah Connor', username: 'sarah', telegramUserId: 123456, email: 'sarah@example.com' },
    assignee: { name: 'Alex', username: 'alex' }, team: 'Tier 2',
    firstResponseDueAt: new Date('2026-01-02T10:30:45Z'), firstResponseAt: null, nextResponseDueAt: null, resolutionDueAt: new Date('2026-01-03T09:00:00Z'), slaPaused: false,
  };

  it('the card shows the ticket, customer, status, priority, assignee, team, SLA and tags', () => {
    assert.equal(cardText(card), [
      '🎫 #7 · Refund',
      'Customer: Sarah Connor · @sarah · sarah@example.com (id 123456)',
      'Status: ⏳ waiting on customer · Priority: high · Category: Billing',
      'Assignee: Alex (@alex) · Team: Tier 2',
      'SLA: first response by 2026-01-02 10:30 UTC · resolution by 2026-01-03 09:00 UTC',
      'Tags: #vip #refund',
      '',
      'I was charged twice',
    ].join('\n'));
  });

  it('the card\'s SLA line: a met first response is ticked, a running next response shown, a paused resolution said', () => {
    const text = cardText({ ...card, firstResponseAt: new Date('2026-01-02T10:00:00Z'), nextResponseDueAt: new Date('2026-01-02T12:15:00Z'), slaPaused: true });
    assert.ok(text.includes('SLA: first response ✓ · next response by 2026-01-02 12:15 UTC · resolution paused (waiting on the customer)'), text);
  });

  it('the card of a bare ticket says nobody is assigned and leaves out what is unknown', () => {
    const text = cardText({ ...card, category: null, tags: [], assignee: null, team: null, firstResponseDueAt: null, resolutionDueAt: null, description: '  ',
      customer: { name: null, username: null, telegramUserId: null, email: null } });
    assert.equal(text, ['🎫 #7 · Refund', 'Customer: Customer', 'Status: ⏳ waiting on customer · Priority: high', 'Assignee: — nobody yet'].join('\n'));
  });

  it('the card cuts a long description (Telegram allows 4096 characters in a message)', () => {
    const text = cardText({ ...card, description: 'd'.repeat(5000) });
    const description = text.split('\n').at(-1)!;
    assert.equal(Array.from(description).length, 1500);
    assert.ok(description.endsWith('d…'));
    assert.ok(text.length <= 4096);
  });

  it('card buttons: Take, Resolve, Priority; no Resolve once resolved; none once closed; callback data fits 64 bytes', () => {
    const id = newId('tkt');
    const open = cardKeyboard({ id, status: 'open' })!;
    assert.deepEqual(open.inline_keyboard[0].map((b) => b.callback_data), [`tk:${id}`, `rs:${id}`, `pr:${id}`]);
    assert.deepEqual(cardKeyboard({ id, status: 'resolved' })!.inline_keyboard[0].map((b) => b.callback_data), [`tk:${id}`, `pr:${id}`]);
    assert.equal(cardKeyboard({ id, status: 'closed' }), undefined);
    const all = [...open.inline_keyboard.flat(), ...priorityKeyboard(id).inline_keyboard.flat(), ...resolutionNotice({ id, number: 1 }).reply_markup.inline_keyboard.flat()];
    for (const b of all) assert.ok(Buffer.byteLength(b.callback_data) <= 64, b.callback_data);
  });

  it('the resolution notice offers a 1–5 rating', () => {
    const n = resolutionNotice({ id: 'tkt_x', number: 9 });
    assert.match(n.text, /#9 was resolved/);
    assert.deepEqual(n.reply_markup.inline_keyboard[0].map((b) => b.callback_data), [1, 2, 3, 4, 5].map((i) => `csat:tkt_x:${i}`));
  });
});

describe('bot commands', () => {
  it('reads the name and arguments, the name lower-cased', () => {
    assert.deepEqual(parseCommand('/assign @sam', 'desk_bot'), { name: 'assign', args: '@sam' });
    assert.deepEqual(parseCommand('/Resolve', 'desk_bot'), { name: 'resolve', args: '' });
    assert.deepEqual(parseCommand('  /priority   urgent  ', 'desk_bot'), { name: 'priority', args: 'urgent' });
    assert.deepEqual(parseCommand('/note line one\nline two', 'desk_bot'), { name: 'note', args: 'line one\nline two' });
  });

  it('accepts commands addressed to this bot (any case) and drops those for another bot', () => {
    assert.deepEqual(parseCommand('/assign@desk_bot @sam', 'desk_bot'), { name: 'assign', args: '@sam' });
    assert.deepEqual(parseCommand('/help@Desk_Bot', 'desk_bot'), { name: 'help', args: '' });
    assert.equal(parseCommand('/help@other_bot', 'desk_bot'), null);
    assert.deepEqual(parseCommand('/help@other_bot', null), { name: 'help', args: '' }, 'username unknown: cannot tell');
  });

  it('plain text, "//" notes and a slash later in the text are not commands', () => {
    for (const t of ['hello', '// an internal note', 'see /help', '', '/', '/ resolve', undefined]) assert.equal(parseCommand(t, 'desk_bot'), null, String(t));
  });

  it('/tag: +name and bare names add, -name removes, # and commas are tolerated', () => {
    assert.deepEqual(parseTagChanges('+vip -trial billing'), { add: ['vip', 'billing'], remove: ['trial'] });
    assert.deepEqual(parseTagChanges('#vip,-#old,  +#new'), { add: ['vip', 'new'], remove: ['old'] });
    assert.deepEqual(parseTagChanges('+ - #'), { add: [], remove: [] });
    assert.deepEqual(parseTagChanges(''), { add: [], remove: [] });
  });
});
