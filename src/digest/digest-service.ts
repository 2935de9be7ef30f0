/**
 * The daily digest for team leads (SPEC §6) and /stats' figures: read through the metrics,
 * tickets and accounts services, rendered by digest.ts.
 *
 * Exactly once a day across replicas: the digests row (workspace, local date) is inserted with
 * ON CONFLICT DO NOTHING in the same transaction that queues the Telegram send, so the send
 * exists exactly when the day was taken — two replicas, repeated ticks or a crash between the
 * two cannot make a second one or lose the first.
 */
import { DateTime } from 'luxon';
import type { Db } from '../db/knex.js';
import { inTransaction } from '../db/transaction.js';
import type { Logger } from '../lib/logger.js';
import { sendQueue } from '../send-queue/send-queue.js';
import type { AccountService } from '../accounts/account-service.js';
import type { MetricsService } from '../metrics/metrics-service.js';
import type { TicketService } from '../tickets/ticket-service.js';
import type { WorkspaceService } from '../workspaces/workspace-service.js';
import { formatDigest, type DigestFigures } from './digest.js';
import { digestStore } from './digest-store.js';

type Workspace = Awaited<ReturnType<WorkspaceService['get']>>;
const OVERDUE_SHOWN = 5;

export function createDigestService(deps: { metrics: MetricsService; tickets: TicketService; accounts: AccountService; workspaces: WorkspaceService }) {
  const { metrics, tickets, accounts, workspaces } = deps;

  /** Yesterday's (or today's) figures in the workspace's time zone, the backlog and overdue list as of `now`. */
  async function figures(db: Db, ws: Workspace, period: DigestFigures['period'], now: Date): Promise<DigestFigures> {
    const today = DateTime.fromJSDate(now, { zone: ws.timezone }).startOf('day');
    // Whole local days (23 or 25 hours across a DST change); "today" ends at midnight, which
    // counts the same as now: nothing has happened later.
    const start = period === 'yesterday' ? today.minus({ days: 1 }) : today;
    const from = start.toJSDate();
    const to = start.plus({ days: 1 }).toJSDate();
    const range = { from: from.toISOString(), to: to.toISOString() };
    const created = await metrics.createdCount(db, ws.id, from, to);
    const fr = (await metrics.durations(db, ws.id, 'first_response', range)).overall;
    const resolved = (await metrics.durations(db, ws.id, 'resolution', range)).overall.count;
    const sla = (await metrics.sla(db, ws.id, range)) as unknown as { targets: DigestFigures['sla']; at_risk_now: number; breached_open_now: number };
    const backlog = await metrics.backlog(db, ws.id, {});
    const overdue = await tickets.mostOverdue(db, ws.id, now, OVERDUE_SHOWN);
    return {
      period, localDate: start.toISODate()!, timezone: ws.timezone, now, created, resolved,
      firstResponse: { count: fr.count, p50Seconds: fr.p50_seconds, p90Seconds: fr.p90_seconds },
      sla: sla.targets,
      backlog: { total: backlog.total, unassigned: backlog.unassigned, atRisk: sla.at_risk_now, breachedOpen: sla.breached_open_now },
      overdue,
    };
  }

  /** The digest is due: a live workspace with a lead chat and a digest time, and its local time has reached it. */
  function dueDate(ws: Workspace, now: Date): string | null {
    if (ws.mode !== 'live' || !ws.digestTime || ws.leadChatId === null) return null;
    const local = DateTime.fromJSDate(now, { zone: ws.timezone });
    return local.toFormat('HH:mm') >= ws.digestTime ? local.toISODate() : null;
  }

  return {
    figures,

    /** /stats in General: today so far, in the digest's form. */
    async todayText(db: Db, workspaceId: string, now: Date): Promise<string> {
      return formatDigest(await figures(db, await workspaces.get(db, workspaceId), 'today', now));
    },

    /**
     * Queues every digest due at `now` that was not queued yet for the workspace's local date
     * (a late replica or a restart after digest_time still sends that day's, once). One
     * workspace failing does not hold back the others; the run fails afterwards (job failures).
     */
    async sendDue(db: Db, now: Date, logger: Logger, signal?: AbortSignal): Promise<{ queued: number }> {
      let queued = 0;
      const failed: string[] = [];
      for (const ws of await workspaces.list(db)) {
        if (signal?.aborted) break; // the workspaces left are the next tick's (one digest per local date)
        const localDate = dueDate(ws, now);
        if (!localDate) continue;
        try {
          // Cheap pre-check so a day already sent costs one lookup a tick; the claim below decides.
          if (await digestStore.exists(db, ws.id, localDate)) continue;
          const accountId = await accounts.speakerOfWorkspace(db, ws.id);
          if (!accountId) {
            logger.warn({ workspace_id: ws.id }, 'digest due but the workspace has no bot to send it');
            continue;
          }
          const text = formatDigest(await figures(db, ws, 'yesterday', now));
          const taken = await inTransaction(db, async (tx) => {
            if (!(await digestStore.claim(tx, ws.id, localDate, now))) return false;
            await sendQueue.enqueue(tx, { workspaceId: ws.id, accountId, chatId: ws.leadChatId, op: 'send_message', payload: { text }, at: now });
            return true;
          });
          if (taken) queued++;
        } catch (err) {
          logger.error({ err, workspace_id: ws.id }, 'digest failed');
          failed.push(ws.id);
        }
      }
      if (failed.length) throw new Error(`digest failed for ${failed.join(', ')}`);
      return { queued };
    },
  };
}

export type DigestService = ReturnType<typeof createDigestService>;
