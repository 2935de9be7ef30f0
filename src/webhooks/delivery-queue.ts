/**
 * The delivery queue's SQL: fan-out from the events outbox, claiming due deliveries, and
 * recording what an attempt did. Safe with any number of workers in any number of
 * replicas: every claim is FOR UPDATE SKIP LOCKED, and an outcome is recorded only by the
 * worker holding the latest claim (attempt_count is the fencing token).
 */
import type { Db, Knex } from '../db/knex.js';
import { newId } from '../lib/ids.js';
import type { AttemptJson } from './webhook-store.js';
import { inTransaction } from '../db/transaction.js';

/** The attempt log keeps the last 50 entries: `attempts || new`, oldest dropped past that. */
const MAX_ATTEMPTS_KEPT = 50;
const appendAttempt = (log: string, entry: string) =>
  `(CASE WHEN jsonb_array_length(${log}) >= ${MAX_ATTEMPTS_KEPT} THEN (${log} - 0) ELSE ${log} END) || ${entry}`;

const LOST_ATTEMPT = `jsonb_build_object(
  'at', to_char(d.in_flight_since AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
  'status_code', NULL::int, 'duration_ms', NULL::int, 'response_excerpt', NULL::text,
  'error', 'no outcome was recorded in time (the worker stopped, or its lease ran out): sent again')`;

export interface ClaimedDelivery {
  id: string;
  /** The fencing token: the outcome is recorded only while the claim is the latest. */
  attemptCount: number;
  scheduleStep: number;
  eventId: string;
  eventType: string;
  eventCreatedAt: Date;
  payload: unknown;
  /** SPEC §4.6: null when the event carries none. */
  previous: Record<string, unknown> | null;
  details: Record<string, unknown> | null;
  workspaceId: string;
  endpointId: string;
  url: string;
  secret: string;
  previousSecret: string | null;
  previousSecretExpiresAt: Date | null;
}

export const deliveryQueue = {
  /**
   * Moves up to `batch` events from the fan-out queue into deliveries, in one transaction:
   * a crash anywhere leaves the events queued. Returns how many events it took.
   *
   * An event goes to each endpoint subscribed to it (now) that was enabled when it happened
   * (enabled_periods), however late this runs: an endpoint disabled since then gets the
   * delivery held (paused), released when it is enabled again.
   * The endpoints are read FOR SHARE: one being disabled or enabled meanwhile waits for this
   * transaction (and then pauses or releases these deliveries with the rest) or makes it wait
   * (and is then seen as it is now).
   */
  async fanOut(db: Knex, batch: number, now: Date): Promise<number> {
    return inTransaction(db, async (trx) => {
      const claimed = await trx.raw(`
        DELETE FROM webhook_fanout_queue
        WHERE event_id IN (SELECT event_id FROM webhook_fanout_queue ORDER BY event_id LIMIT ? FOR UPDATE SKIP LOCKED)
        RETURNING event_id`, [batch]);
      const eventIds: string[] = claimed.rows.map((r: { event_id: string }) => r.event_id);
      if (eventIds.length === 0) return 0;
      const pairs = await trx.raw(`
        SELECT e.id AS event_id, e.type, e.workspace_id, w.id AS endpoint_id, w.enabled
        FROM events e
        JOIN webhook_endpoints w ON w.workspace_id = e.workspace_id
          AND w.enabled_periods @> e.created_at
          AND w.events && ARRAY[e.type, '*']
        WHERE e.id = ANY(?)
        ORDER BY e.id
        FOR SHARE OF w`, [eventIds]);
      if (pairs.rows.length > 0) {
        await trx('webhook_deliveries').insert(pairs.rows.map((p: any) => ({
          id: newId('dlv'), workspace_id: p.workspace_id, endpoint_id: p.endpoint_id, event_id: p.event_id, event_type: p.type,
          status: 'pending', paused: !p.enabled, next_attempt_at: now, created_at: now, updated_at: now,
        }))).onConflict(['endpoint_id', 'event_id']).ignore();
      }
      return eventIds.length;
    });
  },

  /**
   * Claims up to `limit` due deliveries of enabled endpoints, skipping endpoints in `busy`.
   * A claim moves next_attempt_at to `leaseUntil`: if the worker dies, the delivery is due
   * again then, and the next claim logs the lost attempt.
   */
  async claim(db: Db, opts: { now: Date; leaseUntil: Date; limit: number; busy: string[] }): Promise<ClaimedDelivery[]> {
    const { rows } = await db.raw(`
      WITH due AS (
        SELECT d.id FROM webhook_deliveries d
        WHERE d.status IN ('pending', 'failed') AND NOT d.paused AND d.next_attempt_at <= ?
          AND d.endpoint_id <> ALL(?::text[])
          AND EXISTS (SELECT 1 FROM webhook_endpoints w WHERE w.id = d.endpoint_id AND w.enabled)
        ORDER BY d.next_attempt_at
        LIMIT ?
        FOR UPDATE OF d SKIP LOCKED
      )
      UPDATE webhook_deliveries d SET
        attempt_count = d.attempt_count + 1,
        next_attempt_at = ?,
        in_flight_since = ?,
        -- A lost attempt counts as a failed one: a delivery that kills its worker every time
        -- still reaches the end of its schedule (and is then given up, see the worker).
        schedule_step = d.schedule_step + (d.in_flight_since IS NOT NULL)::int,
        attempts = CASE WHEN d.in_flight_since IS NULL THEN d.attempts ELSE ${appendAttempt('d.attempts', LOST_ATTEMPT)} END
      FROM due, webhook_endpoints w, events e
      WHERE d.id = due.id AND w.id = d.endpoint_id AND e.id = d.event_id
      RETURNING d.id, d.attempt_count, d.schedule_step, d.event_id, d.event_type, d.workspace_id, d.endpoint_id,
        e.created_at AS event_created_at, e.payload, e.previous, e.details,
        w.url, w.secret, w.previous_secret, w.previous_secret_expires_at`,
    [opts.now, opts.busy, opts.limit, opts.leaseUntil, opts.now]);
    return rows.map((r: any): ClaimedDelivery => ({
      id: r.id,
      attemptCount: r.attempt_count,
      scheduleStep: r.schedule_step,
      eventId: r.event_id,
      eventType: r.event_type,
      eventCreatedAt: r.event_created_at,
      payload: r.payload,
      previous: r.previous,
      details: r.details,
      workspaceId: r.workspace_id,
      endpointId: r.endpoint_id,
      url: r.url,
      secret: r.secret,
      previousSecret: r.previous_secret,
      previousSecretExpiresAt: r.previous_secret_expires_at,
    }));
  },

  /**
   * Records an attempt's outcome if `claim` is still the latest claim and unrecorded. Returns
   * null when it is not (the lease ran out and another worker or a replay took over, or it was
   * recorded already), else whether the endpoint is marked failing.
   */
  async recordAttempt(db: Db, claim: Pick<ClaimedDelivery, 'id' | 'attemptCount'>, outcome: {
    status: 'succeeded' | 'failed' | 'dead';
    scheduleStep: number;
    nextAttemptAt: Date | null;
    attempt: AttemptJson;
    now: Date;
  }): Promise<{ endpointFailing: boolean } | null> {
    const { rows } = await db.raw(`
      UPDATE webhook_deliveries SET
        status = ?, schedule_step = ?, next_attempt_at = ?, in_flight_since = NULL, updated_at = ?,
        attempts = ${appendAttempt('attempts', '?::jsonb')}
      WHERE id = ? AND attempt_count = ? AND in_flight_since IS NOT NULL
      RETURNING (SELECT w.failing_since IS NOT NULL FROM webhook_endpoints w WHERE w.id = endpoint_id) AS endpoint_failing`,
    [outcome.status, outcome.scheduleStep, outcome.nextAttemptAt, outcome.now, JSON.stringify([outcome.attempt]), claim.id, claim.attemptCount]);
    return rows.length ? { endpointFailing: rows[0].endpoint_failing === true } : null;
  },

  /**
   * Makes a delivery due now with its schedule started over (a replay). A claim still held
   * is fenced out (attempt_count moves on, so its outcome is not recorded) and noted in the
   * log as a lost attempt.
   */
  async replay(db: Db, id: string, now: Date) {
    const { rows } = await db.raw(`
      UPDATE webhook_deliveries d SET
        status = 'pending', schedule_step = 0, next_attempt_at = ?, paused = false, updated_at = ?,
        attempt_count = d.attempt_count + (d.in_flight_since IS NOT NULL)::int,
        attempts = CASE WHEN d.in_flight_since IS NULL THEN d.attempts ELSE ${appendAttempt('d.attempts', LOST_ATTEMPT)} END,
        in_flight_since = NULL
      WHERE d.id = ?
      RETURNING d.*`, [now, now, id]);
    return rows[0];
  },

  /**
   * Records successful attempts in one statement (the worker batches them: at hundreds per
   * second one UPDATE per delivery would queue on the connection pool). Each row is updated
   * only if its claim is still the latest. Returns the endpoints marked failing among them.
   */
  async recordSuccesses(db: Db, items: Array<{ claim: Pick<ClaimedDelivery, 'id' | 'attemptCount'>; attempt: AttemptJson; now: Date }>): Promise<string[]> {
    if (items.length === 0) return [];
    const rows = items.map((i) => ({ id: i.claim.id, token: i.claim.attemptCount, attempt: i.attempt, now: i.now.toISOString() }));
    const { rows: updated } = await db.raw(`
      UPDATE webhook_deliveries d SET
        status = 'succeeded', next_attempt_at = NULL, in_flight_since = NULL, updated_at = v.now,
        attempts = ${appendAttempt('d.attempts', 'jsonb_build_array(v.attempt)')}
      FROM jsonb_to_recordset(?::jsonb) AS v(id text, token integer, attempt jsonb, now timestamptz)
      WHERE d.id = v.id AND d.attempt_count = v.token AND d.in_flight_since IS NOT NULL
      RETURNING d.endpoint_id, (SELECT w.failing_since IS NOT NULL FROM webhook_endpoints w WHERE w.id = d.endpoint_id) AS endpoint_failing`,
    [JSON.stringify(rows)]);
    const failing: string[] = updated.filter((r: any) => r.endpoint_failing === true).map((r: any) => r.endpoint_id);
    return [...new Set(failing)];
  },

  /**
   * A failed attempt: the endpoint's failure streak starts now unless it already runs (then
   * the row is only read: no new row version per failure). Returns the endpoint row.
   */
  async markEndpointFailing(db: Db, endpointId: string, now: Date): Promise<any | undefined> {
    const [started] = await db('webhook_endpoints').where({ id: endpointId }).whereNull('failing_since')
      .update({ failing_since: now }).returning('*');
    return started ?? db('webhook_endpoints').where({ id: endpointId }).first();
  },

  /** A successful attempt ends the endpoint's failure streak. */
  async clearEndpointFailing(db: Db, endpointId: string): Promise<void> {
    await db('webhook_endpoints').where({ id: endpointId }).whereNotNull('failing_since').update({ failing_since: null });
  },
};
