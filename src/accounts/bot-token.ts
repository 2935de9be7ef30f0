/**
 * Bot tokens: their shape, and asking Telegram (getMe) whether it accepts one.
 *
 * A token is a secret: it is never put in an error, a log line or an answer. Telegraf
 * redacts it from network error messages itself; we add nothing that could carry it.
 */
import { Telegram, TelegramError } from 'telegraf';
import { AppError } from '../kernel/errors.js';

/** What @BotFather hands out: the bot's numeric id, a colon, and at least 20 secret characters. */
export const BOT_TOKEN_PATTERN = /^\d+:[A-Za-z0-9_-]{20,}$/;

export const GET_ME_TIMEOUT_MS = 5000;

export interface BotIdentity {
  id: number;
  username: string;
  firstName: string;
}

const tokenError = (detail: string, error: string) => new AppError('validation_error', detail, { details: [{ field: 'bot_token', error }] });

/** The bot's user id a well-formed token starts with; a 422 (naming no value) for anything else. */
export function botIdOf(token: string): number {
  const id = BOT_TOKEN_PATTERN.test(token) ? Number(token.slice(0, token.indexOf(':'))) : NaN;
  if (!Number.isSafeInteger(id) || id <= 0) throw tokenError('bot_token does not look like a bot token (123456789:AA…, from @BotFather)', 'does not look like a bot token (123456789:AA…, from @BotFather)');
  return id;
}

const unavailable = (retryAfterSeconds = 5) => new AppError(
  'telegram_unavailable', 'Telegram could not be reached to check the token; try again',
  { headers: { 'Retry-After': String(retryAfterSeconds) } },
);

/**
 * Asks Telegram who the bot of `token` is (getMe), within `timeoutMs` (5 s).
 * Telegram refuses the token (401; 404 is what it answers for a token it cannot even parse)
 * → 422 validation_error on bot_token. No answer, a 5xx, a 429 or a timeout → 503 telegram_unavailable.
 */
export async function verifyBotToken(token: string, apiRoot: string, opts: { timeoutMs?: number } = {}): Promise<BotIdentity> {
  // Telegraf builds `new URL('./bot<token>/getMe', apiRoot)`: without a trailing slash a
  // path prefix of apiRoot (a self-hosted server under /tg) would be dropped.
  const telegram = new Telegram(token, { apiRoot: apiRoot.endsWith('/') ? apiRoot : `${apiRoot}/`, webhookReply: false });
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), opts.timeoutMs ?? GET_ME_TIMEOUT_MS);
  try {
    // Telegraf types the signal as the abort-controller shim's; the platform one is what node-fetch takes.
    const me = await telegram.callApi('getMe', {}, { signal: controller.signal as never });
    if (typeof me?.id !== 'number') throw unavailable();
    return { id: me.id, username: me.username, firstName: me.first_name };
  } catch (err) {
    if (err instanceof AppError) throw err;
    if (err instanceof TelegramError) {
      if (err.code === 401 || err.code === 404) throw tokenError('Telegram does not accept this bot token', 'Telegram does not accept this bot token');
      if (err.code === 429) throw unavailable(Math.max(1, Math.min(3600, Number(err.parameters?.retry_after) || 5)));
    }
    // Refused connection, DNS, abort (timeout), a 5xx, a body that is not JSON, any other answer.
    throw unavailable();
  } finally {
    clearTimeout(timer);
  }
}
