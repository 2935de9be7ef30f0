import assert from 'node:assert/strict';
import { useTelegramHarness, type TelegramHarness } from '../helpers/telegram-harness.js';

describe('smoke', () => {
  const harness = useTelegramHarness();
  let h: TelegramHarness;
  before(() => { h = harness.h; });

  it('runs the intake form, creates a topic with a card and relays both ways', async () => {
    const { fake, bot, group } = h;
    const sarah = fake.addUser({ firstName: 'Sarah', username: 'sarah' });
    const alex = fake.addUser({ firstName: 'Alex', username: 'alex' });
    fake.addMember(group, alex);
    fake.userSends(bot, sarah, '/start');
    { const t0 = Date.now(); await h.settle(); console.log('settle', Date.now() - t0); }
    let mine = fake.messagesIn(sarah.id, { botId: bot.id });
    const q1 = mine.at(-1)!;
    console.log(q1.text, JSON.stringify(q1.reply_markup));
    fake.userPresses(bot, sarah, { chatId: sarah.id, messageId: q1.message_id }, q1.reply_markup.inline_keyboard[1][0].callback_data);
    { const t0 = Date.now(); await h.settle(); console.log('settle', Date.now() - t0); }
    fake.userSends(bot, sarah, 'Cannot log in');
    { const t0 = Date.now(); await h.settle(); console.log('settle', Date.now() - t0); }
    fake.userSends(bot, sarah, 'It says wrong password every time');
    { const t0 = Date.now(); await h.settle(); console.log('settle', Date.now() - t0); }
    mine = fake.messagesIn(sarah.id, { botId: bot.id });
    const q4 = mine.at(-1)!;
    console.log(q4.text);
    fake.userPresses(bot, sarah, { chatId: sarah.id, messageId: q4.message_id }, q4.reply_markup.inline_keyboard.at(-1)[0].callback_data);
    { const t0 = Date.now(); await h.settle(); console.log('settle', Date.now() - t0); }
    mine = fake.messagesIn(sarah.id, { botId: bot.id });
    console.log(mine.map((m) => m.text));
    const topics = fake.topics(group.id);
    console.log(topics.map((t) => ({ name: t.name, pinned: t.pinned, msgs: t.messages.map((m) => m.text) })));
    assert.equal(topics.length, 1);
    fake.userSends(bot, sarah, 'any news?');
    { const t0 = Date.now(); await h.settle(); console.log('settle', Date.now() - t0); }
    fake.memberSends(group, alex, 'Hi Sarah, try resetting', { threadId: topics[0].threadId });
    { const t0 = Date.now(); await h.settle(); console.log('settle', Date.now() - t0); }
    mine = fake.messagesIn(sarah.id, { botId: bot.id });
    console.log(mine.map((m) => m.text));
    fake.memberSends(group, alex, '/resolve', { threadId: topics[0].threadId });
    { const t0 = Date.now(); await h.settle(); console.log('settle', Date.now() - t0); }
    mine = fake.messagesIn(sarah.id, { botId: bot.id });
    console.log(mine.at(-1)!.text, fake.topics(group.id)[0].name);
    const t = await h.api.get('/v1/tickets').set('Authorization', h.auth);
    console.log(Object.keys(t.body));
    console.log(h.logs.filter((l) => /"level":(40|50)/.test(l)).join('\n'));
  });
});
