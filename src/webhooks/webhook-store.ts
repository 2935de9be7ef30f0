/** Webhook endpoints and their delivery log: rows ↔ objects, and the API's shapes. */
import type { Db } from '../db/knex.js';
import { paginate, type PageRequest } from '../kernel/pagination.js';
import type { DeliveryJson, DeliveryStatus, WebhookJson } from './webhook-schemas.js';

export interface Endpoint {
  id: string;
  workspaceId: string;
  url: string;
  events: string[];
  description: string | null;
  enabled: boolean;
  secret: string;
  previousSecret: string | null;
  previousSecretExpiresAt: Date | null;
  disabledReason: string | null;
  disabledAt: Date | null;
  failingSince: Date | null;
  createdAt: Date;
  updatedAt: Date;
}

export function toEndpoint(r: any): Endpoint {
  return {
    id: r.id,
    workspaceId: r.workspace_id,
    url: r.url,
    events: r.events,
    description: r.description,
    enabled: r.enabled,
    secret: r.secret,
    previousSecret: r.previous_secret,
    previousSecretExpiresAt: r.previous_secret_expires_at,
    disabledReason: r.disabled_reason,
    disabledAt: r.disabled_at,
    failingSince: r.failing_since,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

const iso = (d: Date | null) => d?.toISOString() ?? null;

/** An endpoint as the API shows it: never its secrets. */
export function presentEndpoint(e: Endpoint, now: Date): WebhookJson {
  const overlap = e.previousSecretExpiresAt && e.previousSecretExpiresAt > now ? e.previousSecretExpiresAt : null;
  return {
    id: e.id,
    url: e.url,
    events: e.events,
    description: e.description,
    enabled: e.enabled,
    disabled_reason: e.disabledReason,
    disabled_at: iso(e.disabledAt),
    failing_since: iso(e.failingSince),
    previous_secret_expires_at: iso(overlap),
    created_at: e.createdAt.toISOString(),
    updated_at: e.updatedAt.toISOString(),
  };
}

/** The secrets that sign right now: the current one, then a rotated-out one still in its overlap. */
export function signingSecrets(e: Pick<Endpoint, 'secret' | 'previousSecret' | 'previousSecretExpiresAt'>, now: Date): string[] {
  const previousLive = e.previousSecret && e.previousSecretExpiresAt && e.previousSecretExpiresAt > now;
  return previousLive ? [e.secret, e.previousSecret!] : [e.secret];
}

export interface AttemptJson {
  at: string;
  status_code: number | null;
  duration_ms: number | null;
  error: string | null;
  response_excerpt: string | null;
}

/** A delivery as the store reads it (DELIVERY_COLUMNS); `attempts` holds the last 50, oldest first. */
export interface DeliveryRow {
  id: string;
  event_id: string;
  event_type: string;
  endpoint_id: string;
  status: DeliveryStatus;
  attempts: AttemptJson[];
  next_attempt_at: Date | null;
  in_flight_since: Date | null;
  paused: boolean;
  created_at: Date;
}

export function presentDelivery(r: DeliveryRow): DeliveryJson {
  return {
    id: r.id,
    event_id: r.event_id,
    event: r.event_type,
    endpoint_id: r.endpoint_id,
    status: r.status,
    attempts: r.attempts,
    // Held deliveries (endpoint disabled) have no next attempt until the endpoint is enabled.
    next_attempt_at: (r.status === 'pending' || r.status === 'failed') && !r.paused ? iso(r.next_attempt_at) : null,
    created_at: r.created_at.toISOString(),
  };
}

const DELIVERY_COLUMNS = ['id', 'event_id', 'event_type', 'endpoint_id', 'status', 'attempts', 'next_attempt_at', 'in_flight_since', 'paused', 'created_at'] as const;

export const webhookStore = {
  async insert(db: Db, row: Record<string, unknown>): Promise<Endpoint> {
    const [r] = await db('webhook_endpoints').insert(row).returning('*');
    return toEndpoint(r);
  },

  /** `lock`: 'update' to change the endpoint, 'share' to keep it from changing (enabled) meanwhile. */
  async find(db: Db, workspaceId: string, id: string, opts: { lock?: 'update' | 'share' } = {}): Promise<Endpoint | null> {
    const q = db('webhook_endpoints').where({ workspace_id: workspaceId, id }).first();
    if (opts.lock === 'update') q.forUpdate();
    if (opts.lock === 'share') q.forShare();
    const r = await q;
    return r ? toEndpoint(r) : null;
  },

  async count(db: Db, workspaceId: string): Promise<number> {
    const [{ n }] = await db('webhook_endpoints').where({ workspace_id: workspaceId }).count({ n: '*' });
    return Number(n);
  },

  list(db: Db, workspaceId: string, page: PageRequest, filters: { enabled?: boolean }) {
    const q = db('webhook_endpoints').where({ workspace_id: workspaceId });
    if (filters.enabled !== undefined) q.where({ enabled: filters.enabled });
    return paginate(q.select('*'), [['created_at', 'asc'], ['id', 'asc']], page, toEndpoint);
  },

  async update(db: Db, id: string, changes: Record<string, unknown>): Promise<Endpoint> {
    const [r] = await db('webhook_endpoints').where({ id }).update(changes).returning('*');
    return toEndpoint(r);
  },

  async remove(db: Db, workspaceId: string, id: string): Promise<boolean> {
    return (await db('webhook_endpoints').where({ workspace_id: workspaceId, id }).del()) > 0;
  },

  /** Holds (paused) or releases the deliveries still to be made to an endpoint. */
  async setDeliveriesPaused(db: Db, endpointId: string, paused: boolean): Promise<number> {
    return db('webhook_deliveries')
      .where({ endpoint_id: endpointId, paused: !paused })
      .whereIn('status', ['pending', 'failed'])
      .update({ paused });
  },

  async insertDelivery(db: Db, row: Record<string, unknown>) {
    const [r] = await db('webhook_deliveries').insert(row).returning(DELIVERY_COLUMNS);
    return r;
  },

  async findDelivery(db: Db, workspaceId: string, id: string, opts: { lock?: boolean } = {}) {
    const q = db('webhook_deliveries').select(DELIVERY_COLUMNS).where({ workspace_id: workspaceId, id }).first();
    if (opts.lock) q.forUpdate();
    return q;
  },

  listDeliveries(db: Db, endpointId: string, page: PageRequest, filters: { status?: DeliveryStatus[]; event?: string }) {
    const q = db('webhook_deliveries').select(DELIVERY_COLUMNS).where({ endpoint_id: endpointId });
    if (filters.status) q.whereIn('status', filters.status);
    if (filters.event) q.where({ event_type: filters.event });
    return paginate(q, [['created_at', 'desc'], ['id', 'desc']], page, (r): DeliveryRow => r);
  },

};
