/**
 * Routes one stored update to the customer or agent side, through Telegraf's Composer and
 * Context (its update-type filters and accessors). The Context is given a Telegram client, as
 * Telegraf requires, but handlers never use it: they queue their calls (bot-context.ts).
 */
import { Composer, Context, type Telegram } from 'telegraf';
import { agentFlow } from './agent-flow.js';
import type { BotCtx } from './bot-context.js';
import { customerFlow } from './customer-flow.js';

interface RoutedContext extends Context {
  state: { bot: BotCtx };
}

const isPrivate = (chat: any) => chat?.type === 'private';
/** The bot's own support group; messages from any other group are ignored. */
const isSupportGroup = (c: BotCtx, chat: any) => chat?.id !== undefined && c.account.supportChatId !== null && Number(chat.id) === c.account.supportChatId;

function buildRouter(): Composer<RoutedContext> {
  const router = new Composer<RoutedContext>();
  router.on('message', async (ctx) => {
    const c = ctx.state.bot;
    if (isPrivate(ctx.chat)) await customerFlow.message(c, ctx.message);
    else if (isSupportGroup(c, ctx.chat)) await agentFlow.message(c, ctx.message);
  });
  router.on('edited_message', async (ctx) => {
    const c = ctx.state.bot;
    if (isPrivate(ctx.chat)) await customerFlow.edited(c, ctx.editedMessage);
    else if (isSupportGroup(c, ctx.chat)) await agentFlow.edited(c, ctx.editedMessage);
  });
  router.on('callback_query', async (ctx) => {
    const c = ctx.state.bot;
    const q = ctx.callbackQuery;
    if (!('data' in q)) return c.answer(q.id);
    const chat = q.message?.chat;
    if (!chat || isPrivate(chat)) await customerFlow.callback(c, q);
    else if (isSupportGroup(c, chat)) await agentFlow.callback(c, q);
    else await c.answer(q.id);
  });
  router.on('my_chat_member', async (ctx) => {
    if (isPrivate(ctx.chat)) await customerFlow.membership(ctx.state.bot, ctx.myChatMember);
  });
  return router;
}

const router = buildRouter().middleware();

export async function routeUpdate(update: any, bot: BotCtx, telegram: Telegram): Promise<void> {
  const ctx = new Context(update, telegram, {
    id: bot.account.botUserId ?? 0, is_bot: true, first_name: bot.account.botUsername ?? 'bot', username: bot.account.botUsername ?? 'bot',
    can_join_groups: true, can_read_all_group_messages: true, supports_inline_queries: false,
  } as any) as unknown as RoutedContext;
  ctx.state.bot = bot;
  await router(ctx, async () => undefined);
}
