/**
 * Webhook endpoints (SPEC §7): register, change, rotate secrets, test, read the delivery
 * log, replay. Deliveries themselves are made by the worker (webhook-worker.ts).
 *
 * Disabling (by the API, by a 410 answer, or after failing continuously) holds the
 * endpoint's outstanding deliveries (paused) instead of dropping them; enabling it again
 * releases them. Events that happen while an endpoint is disabled are not queued for it;
 * events from before it was disabled still are, however late the fan-out runs.
 */
import type { Config } from '../config.js';
import { LOCK_NAMESPACES, lockKey } from '../db/advisory-lock.js';
import type { Db } from '../db/knex.js';
import { eventRow, eventOutbox } from '../events/event-outbox.js';
import { SYSTEM } from '../kernel/actor.js';
import { PING } from '../events/event-types.js';
import { AppError, notFound } from '../kernel/errors.js';
import type { PageRequest } from '../kernel/pagination.js';
import type { Clock } from '../lib/clock.js';
import { newId } from '../lib/ids.js';
import { deliveryQueue } from './delivery-queue.js';
import { targetUrlProblem } from './target-url.js';
import type { CreateWebhookBody, DeliveryStatus, ListDeliveriesQuery, PatchWebhookBody } from './webhook-schemas.js';
import { generateSecret, secretProblem } from './webhook-signing.js';
import { presentDelivery, presentEndpoint, toEndpoint, webhookStore, type Endpoint } from './webhook-store.js';

/** lockKey namespace of the transaction lock that serialises endpoint creation within a workspace. */
const ENDPOINT_LIMIT_LOCK = LOCK_NAMESPACES.webhookEndpointLimit;

export interface WithSecret {
  endpoint: Endpoint;
  secret: string;
}

const invalid = (field: string, error: string, received?: unknown) =>
  new AppError('validation_error', `${field} ${error}`, { details: [{ field, error, ...(received !== undefined ? { received } : {}) }] });

/** ["*"] when everything is subscribed, else the names once each, in the order given. */
function normaliseEvents(events: readonly string[]): string[] {
  return events.includes('*') ? ['*'] : [...new Set(events)];
}

export function createWebhookService(deps: { clock: Clock; config: Config['webhooks'] }) {
  const { clock, config } = deps;
  const policy = { allowPrivate: config.allowPrivateTargets };

  function checkUrl(url: string): void {
    const problem = targetUrlProblem(url, policy);
    // A URL with credentials in it is refused and not echoed either.
    if (problem) throw invalid('url', problem, /^[^/]*\/\/[^/@]*@/.test(url) ? undefined : url);
  }

  function checkSecret(secret: string): void {
    const problem = secretProblem(secret);
    // Never echo a secret back, not even a rejected one.
    if (problem) throw invalid('secret', problem);
  }

  async function find(db: Db, workspaceId: string, id: string, opts: { lock?: 'update' | 'share' } = {}): Promise<Endpoint> {
    const endpoint = await webhookStore.find(db, workspaceId, id, opts);
    if (!endpoint) throw notFound('Webhook endpoint');
    return endpoint;
  }

  /**
   * Stops deliveries to an endpoint and holds the outstanding ones; emits webhook.disabled.
   * A no-op (null) when it is already disabled. Run it in a transaction (API requests are one).
   */
  async function disable(db: Db, endpoint: Endpoint, reason: string): Promise<Endpoint | null> {
    const now = clock.now();
    const [row] = await db('webhook_endpoints').where({ id: endpoint.id, enabled: true })
      .update({
        enabled: false, disabled_reason: reason, disabled_at: now, updated_at: now,
        enabled_periods: db.raw(`enabled_periods - tstzmultirange(tstzrange(?, NULL))`, [now]),
      }).returning('*');
    if (!row) return null;
    const disabled = toEndpoint(row);
    await webhookStore.setDeliveriesPaused(db, endpoint.id, true);
    await eventOutbox.record(db, endpoint.workspaceId, now, [{
      type: 'webhook.disabled', actor: SYSTEM, payload: presentEndpoint(disabled, now), detail: { reason },
    }]);
    return disabled;
  }

  return {
    async create(db: Db, workspaceId: string, body: CreateWebhookBody): Promise<WithSecret> {
      checkUrl(body.url);
      if (body.secret !== undefined) checkSecret(body.secret);
      // Count and insert under a per-workspace lock, or two creates could both pass the limit.
      await db.raw('SELECT pg_advisory_xact_lock(?)', [lockKey(ENDPOINT_LIMIT_LOCK, workspaceId)]);
      if (await webhookStore.count(db, workspaceId) >= config.maxEndpointsPerWorkspace) {
        throw new AppError('conflict', `A workspace can have at most ${config.maxEndpointsPerWorkspace} webhook endpoints; delete one first`);
      }
      const now = clock.now();
      const secret = body.secret ?? generateSecret();
      const enabled = body.enabled ?? true;
      const endpoint = await webhookStore.insert(db, {
        id: newId('whk'),
        workspace_id: workspaceId,
        url: body.url,
        events: normaliseEvents(body.events),
        description: body.description ?? null,
        enabled,
        secret,
        enabled_periods: enabled ? db.raw(`tstzmultirange(tstzrange(?, NULL))`, [now]) : db.raw(`'{}'::tstzmultirange`),
        disabled_reason: enabled ? null : 'created disabled',
        disabled_at: enabled ? null : now,
        created_at: now,
        updated_at: now,
      });
      return { endpoint, secret };
    },

    list(db: Db, workspaceId: string, page: PageRequest & { enabled?: boolean }) {
      return webhookStore.list(db, workspaceId, page, { enabled: page.enabled });
    },

    get: (db: Db, workspaceId: string, id: string) => find(db, workspaceId, id),

    async update(db: Db, workspaceId: string, id: string, body: PatchWebhookBody): Promise<Endpoint> {
      if (body.url !== undefined) checkUrl(body.url);
      // Locked first, deliveries second: the order every writer of both uses.
      let endpoint = await find(db, workspaceId, id, { lock: 'update' });
      const now = clock.now();
      const changes: Record<string, unknown> = {};
      if (body.url !== undefined) changes.url = body.url;
      if (body.events !== undefined) changes.events = normaliseEvents(body.events);
      if (body.description !== undefined) changes.description = body.description;
      if (body.enabled === true && !endpoint.enabled) {
        Object.assign(changes, {
          enabled: true, disabled_reason: null, disabled_at: null, failing_since: null,
          enabled_periods: db.raw(`enabled_periods + tstzmultirange(tstzrange(?, NULL))`, [now]),
        });
        await webhookStore.setDeliveriesPaused(db, id, false);
      }
      if (body.enabled === false && endpoint.enabled) {
        endpoint = (await disable(db, endpoint, 'disabled through the API')) ?? endpoint;
      }
      if (Object.keys(changes).length === 0) return endpoint;
      return webhookStore.update(db, id, { ...changes, updated_at: now });
    },

    async remove(db: Db, workspaceId: string, id: string): Promise<void> {
      // Its deliveries go with it (ON DELETE CASCADE); one in flight finds nothing to record.
      if (!(await webhookStore.remove(db, workspaceId, id))) throw notFound('Webhook endpoint');
    },

    /** A new secret (given or generated); the old one keeps signing for the overlap window. */
    async rotateSecret(db: Db, workspaceId: string, id: string, body: { secret?: string }): Promise<WithSecret> {
      if (body.secret !== undefined) checkSecret(body.secret);
      const endpoint = await find(db, workspaceId, id, { lock: 'update' });
      const now = clock.now();
      const secret = body.secret ?? generateSecret();
      if (secret === endpoint.secret) throw invalid('secret', 'is the current secret: give a new one, or leave it out to have one generated');
      const updated = await webhookStore.update(db, id, {
        secret,
        previous_secret: endpoint.secret,
        previous_secret_expires_at: new Date(now.getTime() + config.secretOverlapHours * 3600_000),
        updated_at: now,
      });
      return { endpoint: updated, secret };
    },

    /** Queues a `ping` to this endpoint alone. */
    async sendTest(db: Db, workspaceId: string, id: string) {
      const endpoint = await find(db, workspaceId, id, { lock: 'share' });
      if (!endpoint.enabled) throw new AppError('conflict', 'This endpoint is disabled: enable it (PATCH enabled: true) to test it');
      const now = clock.now();
      const event = eventRow(workspaceId, now, {
        type: PING, actor: SYSTEM,
        payload: { webhook_id: endpoint.id, message: 'A test delivery from topicdesk: your endpoint is reachable and signatures can be checked.' },
      });
      await db('events').insert(event);
      const row = await webhookStore.insertDelivery(db, {
        id: newId('dlv'), workspace_id: workspaceId, endpoint_id: endpoint.id, event_id: event.id, event_type: PING,
        status: 'pending', next_attempt_at: now, created_at: now, updated_at: now,
      });
      return presentDelivery(row);
    },

    async listDeliveries(db: Db, workspaceId: string, id: string, query: ListDeliveriesQuery & PageRequest) {
      await find(db, workspaceId, id);
      const status = query.status ? (query.status.split(',') as DeliveryStatus[]) : undefined;
      return webhookStore.listDeliveries(db, id, query, { status, event: query.event });
    },

    async getDelivery(db: Db, workspaceId: string, id: string) {
      const row = await webhookStore.findDelivery(db, workspaceId, id);
      if (!row) throw notFound('Webhook delivery');
      return presentDelivery(row);
    },

    /**
     * Sends a delivery again, now, with the same webhook-id (the event id); the retry
     * schedule starts over. Any status may be replayed.
     */
    async replay(db: Db, workspaceId: string, deliveryId: string) {
      const found = await webhookStore.findDelivery(db, workspaceId, deliveryId);
      if (!found) throw notFound('Webhook delivery');
      // Endpoint first (kept enabled meanwhile), delivery second: the order every writer uses.
      const endpoint = await find(db, workspaceId, found.endpoint_id, { lock: 'share' });
      if (!endpoint.enabled) throw new AppError('conflict', 'The endpoint is disabled: enable it (PATCH enabled: true) to replay its deliveries');
      const row = await webhookStore.findDelivery(db, workspaceId, deliveryId, { lock: true });
      if (!row) throw notFound('Webhook delivery');
      const now = clock.now();
      const outstanding = row.status === 'pending' || row.status === 'failed';
      if (outstanding && row.in_flight_since && row.next_attempt_at > now) {
        throw new AppError('conflict', 'This delivery is being attempted right now; look again in a few seconds', { headers: { 'Retry-After': '10' } });
      }
      return presentDelivery(await deliveryQueue.replay(db, deliveryId, now));
    },

    disable,
  };
}

export type WebhookService = ReturnType<typeof createWebhookService>;
