/**
 * Webhook mode (SPEC §3.3): Telegram POSTs each update of a bot to
 * /telegram/<account id>/webhook with the bot's secret_token in a header. The update is
 * stored (deduplicated by update_id) and answered at once; handling happens in the update
 * workers, so a slow handler never makes Telegram time out and resend.
 */
import type { Knex } from '../db/knex.js';
import { AppError } from '../kernel/errors.js';
import { idParams } from '../http/common-schemas.js';
import { defineRoute, type RouteDef } from '../http/route.js';
import type { Clock } from '../lib/clock.js';
import type { AccountService } from '../accounts/account-service.js';
import { updateInbox } from './update-inbox.js';
import { secretMatches, webhookSecretFor } from './webhook-secret.js';

type WebhookBot = NonNullable<Awaited<ReturnType<AccountService['findRunnable']>>>;

export function telegramRoutes(deps: { db: Knex; clock: Clock; accounts: AccountService; webhookSecret: string | null; onStored?: () => void }): RouteDef[] {
  // The bot whose secret a request proved, from the check to the handler.
  const authorized = new WeakMap<object, WebhookBot>();
  return [defineRoute({
    method: 'post', path: '/telegram/:id/webhook', tag: 'telegram', auth: 'none',
    summary: 'Telegram delivers a bot\'s updates here in webhook mode (X-Telegram-Bot-Api-Secret-Token required)',
    params: idParams('acc'), notFoundLabel: 'Account',
    body: { type: 'object' },
    responses: { 200: { description: 'Stored (or already seen)', schema: { type: 'object', required: ['ok'], properties: { ok: { type: 'boolean' } } } } },
    // The secret before the body: without it, whatever was sent is a 401 (never a 400 or 422
    // that tells an anonymous caller what this route expects).
    async authorize(ctx, next) {
      const account = await deps.accounts.findRunnable(deps.db, ctx.params.id);
      // Unknown bot and wrong secret look alike, and cost the same constant-time comparison.
      const expected = account ? webhookSecretFor(account.token, deps.webhookSecret) : 'no such bot';
      const given = ctx.get('x-telegram-bot-api-secret-token') || undefined;
      if (!secretMatches(given, expected) || !account) throw new AppError('unauthorized', 'Missing or wrong X-Telegram-Bot-Api-Secret-Token');
      authorized.set(ctx, account);
      await next();
    },
    async handler(ctx, { body: update }) {
      const account = authorized.get(ctx)!;
      if (!Number.isSafeInteger(update.update_id)) {
        throw new AppError('validation_error', 'An update needs a numeric update_id', { details: [{ field: 'update_id', error: 'must be an integer' }] });
      }
      await updateInbox.store(deps.db, account.id, [update], deps.clock.now());
      deps.onStored?.();
      ctx.body = { ok: true };
    },
  })];
}
