import type { Services } from '../../src/container.js';
import type { Knex } from '../../src/db/knex.js';

let n = 0;

/** A workspace of its own (tenant-isolation tests need two). */
export async function makeWorkspace(knex: Knex, services: Services, opts: { sandbox?: boolean; name?: string } = {}) {
  return services.workspaces.create(knex, { name: opts.name ?? `Workspace ${++n}`, sandbox: !!opts.sandbox });
}

/** An API key and its token; all scopes unless told otherwise. */
export async function makeKey(
  knex: Knex,
  services: Services,
  opts: { workspaceId?: string; scopes?: string[]; rateLimitPerMinute?: number; expiresAt?: Date; name?: string } = {},
) {
  const created = await services.apiKeys.create(knex, {
    workspaceId: opts.workspaceId ?? 'ws_default',
    name: opts.name ?? `key ${++n}`,
    scopes: opts.scopes ?? ['all'],
    rateLimitPerMinute: opts.rateLimitPerMinute ?? null,
    expiresAt: opts.expiresAt ?? null,
  });
  return { id: created.key.id, token: created.token, auth: `Bearer ${created.token}` };
}

/** An agent of the workspace (agents are created by the Telegram side and a later API). */
export async function makeAgent(knex: Knex, opts: { workspaceId?: string; name?: string; active?: boolean; telegramUserId?: number } = {}) {
  const { agentStore } = await import('../../src/agents/agent-store.js');
  return agentStore.insert(knex, { workspaceId: opts.workspaceId ?? 'ws_default', name: opts.name ?? `Agent ${++n}`, active: opts.active, telegramUserId: opts.telegramUserId, at: new Date() });
}

export async function makeTeam(knex: Knex, opts: { workspaceId?: string; name?: string } = {}) {
  const { teamStore } = await import('../../src/agents/agent-store.js');
  return teamStore.insert(knex, { workspaceId: opts.workspaceId ?? 'ws_default', name: opts.name ?? `Team ${++n}`, at: new Date() });
}

/** A Telegram bot of the workspace; with supportChatId, tickets get a create_topic send. */
export async function makeAccount(knex: Knex, opts: { workspaceId?: string; name?: string; supportChatId?: number | null; isDefault?: boolean } = {}) {
  const { accountStore } = await import('../../src/accounts/account-store.js');
  return accountStore.insert(knex, {
    workspaceId: opts.workspaceId ?? 'ws_default', name: opts.name ?? `Bot ${++n}`, botUsername: `bot${n}_bot`,
    supportChatId: opts.supportChatId === undefined ? -1001234567890 : opts.supportChatId, isDefault: opts.isDefault ?? false, at: new Date(),
  });
}

/**
 * A contact who has written to the bot `accountId` (so bots may message them), as the
 * Telegram side records it. Returns the contact.
 */
export async function makeReachableContact(knex: Knex, services: Services, opts: { workspaceId?: string; accountId: string; telegramUserId?: number; username?: string; firstName?: string; lastName?: string }) {
  const workspaceId = opts.workspaceId ?? 'ws_default';
  const telegramUserId = opts.telegramUserId ?? 100000 + ++n;
  const { contact } = await services.contacts.upsert(knex, workspaceId, {
    telegram_user_id: telegramUserId, username: opts.username, first_name: opts.firstName ?? 'Sarah', last_name: opts.lastName,
  }, { type: 'system', id: null });
  await services.contacts.recordChat(knex, { workspaceId, contactId: contact.id, accountId: opts.accountId, chatId: telegramUserId, at: new Date() });
  return contact;
}
