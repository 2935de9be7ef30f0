/**
 * Key leases: a busy key is not looked up and counted in PostgreSQL on every request.
 *
 * The auth statement finds the key and counts the request in the key's shared window. Run for
 * every request, a busy key's requests queue on its counter row and each pays a round trip.
 * Here one statement counts a *chunk* of n requests for this replica, and the next n - 1
 * requests of that key on this replica are served from memory:
 *
 * - **The limit still holds across replicas**: a request is served only with a number the
 *   shared counter has already counted, so the requests served in a window never exceed
 *   the limit. Unused numbers are given back by the key's next renewal in the same window; a
 *   replica that stops seeing the key keeps at most one chunk (≈ 100 ms of its traffic),
 *   which other replicas then cannot use: their 429 may come that much early.
 * - **Exact near the limit**: chunks are only handed out while more than RESERVE requests
 *   remain, and only up to a quarter of what is left above it; keys whose limit is small
 *   (≤ 108 a minute) are counted one request at a time, as before.
 * - **Fresh enough**: a lease lives at most `maxAgeMs` (1 s), never past its window's end or
 *   the key's expiry. Revoking or rotating a key, or renaming its workspace, on this replica
 *   drops its leases at once (and counts it one request at a time for a few seconds, so a
 *   lookup racing the change's commit cannot cache the old state); another replica sees the
 *   change within `maxAgeMs`.
 * - A key seen at a low rate gets chunks of one: each request runs the statement as before.
 */
import type { AuthChunk, AuthenticatedKey, LeasedKey } from './api-key-store.js';

/** The auth statement for one chunk: counts `take` requests, gives back unused numbers; null when no active key has the hash. */
export type RenewKey = (hash: Buffer, chunk: AuthChunk) => Promise<LeasedKey | null>;

export interface KeyLeaseOptions {
  renew: RenewKey;
  defaultLimit: number;
  /** The longest a looked-up key is trusted without asking PostgreSQL again. */
  maxAgeMs?: number;
  /** A chunk covers this much of the key's recent traffic on this replica. */
  horizonMs?: number;
  /** How long after a change to a key or its workspace its requests are counted one at a time. */
  settleMs?: number;
  /** A monotonic clock in milliseconds (tests move it). */
  now?: () => number;
}

/** Numbers left to the limit below which every request is counted on its own. */
export const RESERVE = 100;
const MAX_CHUNK = 1000;

interface Lease {
  found: LeasedKey;
  limit: number;
  /** The window number the next request served from this lease gets. */
  next: number;
  /** The last number this lease holds (the shared count when it was granted). */
  last: number;
  validUntil: number;
  windowEndsAt: number;
}

interface Slot {
  lease?: Lease;
  /**
   * The renewal in flight, settling with what it found (never rejecting: nobody may be waiting).
   * Its failure fails the requests waiting on it too, at once: retried one after another, a
   * database that times out would hold the last of them for the sum of their timeouts.
   */
  renewing?: Promise<{ found: boolean } | { error: unknown }>;
  /** Requests that asked for this key since the last renewal started, and when that was. */
  arrivals: number;
  renewedAt?: number;
}

export function createKeyLeases(opts: KeyLeaseOptions) {
  const now = opts.now ?? (() => performance.now());
  const maxAgeMs = opts.maxAgeMs ?? 1000;
  const horizonMs = opts.horizonMs ?? 100;
  const settleMs = opts.settleMs ?? 5000;
  const slots = new Map<string, Slot>();
  /** Key and workspace ids changed lately, and until when they are counted one request at a time. */
  const settling = new Map<string, number>();

  function isSettling(found: AuthenticatedKey, at: number): boolean {
    for (const id of [found.key.id, found.workspace.id]) {
      const until = settling.get(id);
      if (until === undefined) continue;
      if (until > at) return true;
      settling.delete(id);
    }
    return false;
  }

  function settle(id: string): void {
    const at = now();
    for (const [other, until] of settling) if (until <= at) settling.delete(other);
    settling.set(id, at + settleMs);
  }

  /** How many numbers the next renewal asks for: one, unless the key is busy here and far from its limit. */
  function chunkFor(slot: Slot, at: number): number {
    const lease = slot.lease;
    if (!lease || slot.renewedAt === undefined || isSettling(lease.found, at)) return 1;
    const wanted = Math.ceil((slot.arrivals / Math.max(at - slot.renewedAt, 1)) * horizonMs);
    const cap = Math.floor((lease.limit - lease.last - RESERVE) / 4);
    return wanted < 2 || cap < 2 ? 1 : Math.min(wanted, cap, MAX_CHUNK);
  }

  function serve(lease: Lease, at: number): AuthenticatedKey {
    const count = lease.next++;
    const { key, keyHash, workspace } = lease.found;
    return { key, keyHash, workspace, windowCount: count, windowResetSeconds: Math.max(1, Math.ceil((lease.windowEndsAt - at) / 1000)) };
  }

  /** Counts a new chunk for the key and serves the request that asked for it from it. */
  async function renew(slot: Slot, id: string, hash: Buffer): Promise<AuthenticatedKey | null> {
    const at = now();
    const take = chunkFor(slot, at);
    const old = slot.lease;
    const unused = old ? Math.max(0, old.last - old.next + 1) : 0;
    slot.arrivals = 0;
    slot.renewedAt = at;
    const found = await opts.renew(hash, { take, giveBack: unused > 0 ? { windowStart: old!.found.windowStart, count: unused } : null });
    if (!found) {
      if (slots.get(id) === slot) slots.delete(id);
      return null;
    }
    const granted = now();
    const life = Math.min(maxAgeMs, found.windowResetMs, found.expiresInMs ?? Infinity);
    slot.lease = {
      found,
      limit: found.key.rateLimitPerMinute ?? opts.defaultLimit,
      next: found.windowCount - take + 1,
      last: found.windowCount,
      // Looked up while its key or workspace was changing: serves this request only (the next gives the rest back).
      validUntil: isSettling(found, granted) ? granted : granted + life,
      windowEndsAt: granted + found.windowResetMs,
    };
    return serve(slot.lease, granted);
  }

  function sweep(at: number): void {
    for (const [id, slot] of slots) if (!slot.renewing && (!slot.lease || slot.lease.validUntil <= at)) slots.delete(id);
  }

  return {
    /**
     * The key behind `hash` with this request counted in its window, or null when no active key
     * has that hash. Rejects when PostgreSQL does.
     */
    async use(hash: Buffer): Promise<AuthenticatedKey | null> {
      const id = hash.toString('base64');
      let slot = slots.get(id);
      if (!slot) {
        if (slots.size >= 10_000) sweep(now());
        slots.set(id, (slot = { arrivals: 0 }));
      }
      slot.arrivals++;
      for (;;) {
        const lease = slot.lease;
        const at = now();
        if (lease && lease.next <= lease.last && at < lease.validUntil) return serve(lease, at);
        if (slot.renewing) {
          const outcome = await slot.renewing;
          if ('error' in outcome) throw outcome.error;
          if (!outcome.found) return null;
          continue;
        }
        const s = slot;
        const attempt = renew(s, id, hash);
        s.renewing = attempt
          .then((found) => ({ found: found !== null }), (error: unknown) => ({ error }))
          .finally(() => { s.renewing = undefined; });
        return attempt;
      }
    },

    /** Drops the leases of a key that was revoked, rotated or otherwise changed. */
    forgetKey(keyId: string): void {
      settle(keyId);
      for (const slot of slots.values()) if (slot.lease?.found.key.id === keyId) slot.lease = undefined;
    },

    /** Drops the leases of every key of a workspace whose details changed. */
    forgetWorkspace(workspaceId: string): void {
      settle(workspaceId);
      for (const slot of slots.values()) if (slot.lease?.found.workspace.id === workspaceId) slot.lease = undefined;
    },

    /** Keys with a slot here (tests). */
    size: () => slots.size,
  };
}

export type KeyLeases = ReturnType<typeof createKeyLeases>;
