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

export function telegramRoutes(deps: { db: Knex; clock: Clock; accounts: AccountService; webhookSecret: string | null; onStored?: () => void }): RouteDef[] {
  return [defineRoute({
    method: 'post', path: '/telegram/:id/webhook', tag: 'telegram', auth: 'none',
    summary: 'Telegram delivers a bot\'s updates here in webhook mode (X-Telegram-Bot-Api-Secret-Token required)',
    params: idParams('acc'), notFoundLabel: 'Account',
    body: { type: 'object' },
    responses: { 200: { description: 'Stored (or already seen)', schema: { type: 'object', required: ['ok'], properties: { ok: { type: 'boolean' } } } } },
    async handler(ctx, { params, body: update }) {
      const account = await deps.accounts.findRunnable(deps.db, params.id);
      // Unknown bot and wrong secret look alike, and cost the same comparison.
      const expected = account ? webhookSecretFor(account.token, deps.webhookSecret) : 'no such bot';
      const given = ctx.get('x-telegram-bot-api-secret-token') || undefined;
      if (!secretMatches(given, expected) || !account) throw new AppError('unauthorized', 'Missing or wrong X-Telegram-Bot-Api-Secret-Token');
      if (!Number.isSafeInteger(update.update_id)) {
        throw new AppError('validation_error', 'An update needs a numeric update_id', { details: [{ field: 'update_id', error: 'must be an integer' }] });
      }
      await updateInbox.store(deps.db, account.id, [update], deps.clock.now());
      deps.onStored?.();
      ctx.body = { ok: true };
    },
  })];
}
