/**
 * Bot API calls for any bot of any workspace, through Telegraf's client (so TELEGRAM_API_ROOT
 * reaches every call and errors arrive as TelegramError). Clients are cached per token;
 * tokens are read from the accounts table so every replica uses the current one.
 */
import type { AccountService } from '../accounts/account-service.js';
import { Telegram } from 'telegraf';
import type { Db } from '../db/knex.js';

export class AccountGone extends Error {
  constructor(accountId: string) {
    super(`The bot ${accountId} was removed or has no token`);
  }
}

export interface BotApi {
  /** One Bot API call with a time limit; throws TelegramError, a network error or AccountGone. */
  call<T = any>(accountId: string, method: string, payload: Record<string, unknown>): Promise<T>;
  /** A client for a token (the runtime's polling and start-up checks). */
  client(token: string): Telegram;
}

export function createBotApi(opts: { db: Db; accounts: Pick<AccountService, 'tokenOf'>; apiRoot: string; timeoutMs: number; tokenCacheMs?: number }): BotApi {
  const clients = new Map<string, Telegram>();
  const tokens = new Map<string, { token: string | null; until: number }>();
  const tokenCacheMs = opts.tokenCacheMs ?? 5_000;

  const client = (token: string): Telegram => {
    let c = clients.get(token);
    if (!c) {
      // webhookReply off: every call is a real request (research §2.3).
      c = new Telegram(token, { apiRoot: opts.apiRoot, webhookReply: false });
      clients.set(token, c);
    }
    return c;
  };

  async function tokenOf(accountId: string): Promise<string | null> {
    const cached = tokens.get(accountId);
    if (cached && cached.until > Date.now()) return cached.token;
    const token = await opts.accounts.tokenOf(opts.db, accountId);
    tokens.set(accountId, { token, until: Date.now() + tokenCacheMs });
    return token;
  }

  return {
    client,
    async call(accountId, method, payload) {
      const token = await tokenOf(accountId);
      if (!token) throw new AccountGone(accountId);
      return client(token).callApi(method as any, payload as any, { signal: AbortSignal.timeout(opts.timeoutMs) as any }) as any;
    },
  };
}
