/**
 * Key leases: a busy key is not looked up and counted in PostgreSQL on every request.
 *
 * The auth statement finds the key and counts the request in the key's shared window. Run for
 * every request, a busy key's requests queue on its counter row and each pays a round trip.
 * Here one statement counts a *chunk* for this replica: every request of the key waiting for it
 * and, for a busy key, about the next `horizonMs` of its traffic here, served from memory:
 *
 * - **The limit still holds across replicas**: a request is served only with a number the
 *   shared counter has already counted, so the requests served in a window never exceed the
 *   limit. Unused numbers are given back by the key's next statement in the same window (or lost
 *   with it if it fails: never given back twice). A replica that stops seeing the key keeps at
 *   most one chunk, which other replicas then cannot use: their 429 may come that much early.
 * - **Near the limit nothing is counted ahead**: a chunk beyond the waiting requests is only
 *   counted while more than RESERVE numbers remain in the shared count (the statement checks,
 *   whatever other replicas counted since this one last looked), and only a quarter of what is
 *   left above it; keys whose limit is small (≤ 108 a minute) are only ever counted for requests
 *   already waiting, each as its own statement would have counted it.
 * - **Fresh enough**: a lease lives at most `maxAgeMs` (1 s), never past its window's end or the
 *   key's expiry, all counted from when its lookup began. Revoking or rotating a key, or renaming
 *   its workspace, on this replica drops its leases at once; a lookup that began less than
 *   `settleMs` after such a change (which may not have committed yet) serves only the requests
 *   already waiting for it. Another replica sees the change within `maxAgeMs`.
 * - `windowCount` is the shared count as this replica's chunk numbers it: it counts down by one
 *   per request here, and may step back when another replica gives unused numbers back.
 */
import type { AuthChunk, AuthenticatedKey, LeasedKey } from './api-key-store.js';

/** The auth statement for one chunk: counts `take` requests, gives back unused numbers; null when no active key has the hash. */
export type RenewKey = (hash: Buffer, chunk: AuthChunk) => Promise<LeasedKey | null>;

export interface KeyLeaseOptions {
  renew: RenewKey;
  /** The limit of keys without their own. */
  defaultLimit: number;
  /** The longest a looked-up key is trusted without asking PostgreSQL again (0: only by the requests waiting for that lookup). */
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
  /** Requests that arrived up to this one (by the slot's arrival count) may be served whatever validUntil says: they arrived before the lookup began. */
  arrivedBy: number;
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
  /** Requests of this key so far (each gets the next value as its arrival number). */
  arrived: number;
  /** Requests of this key inside use() now: served from the lease, or waiting for a renewal. */
  unserved: number;
  /** Requests that asked for this key since the last renewal started, and when that was. */
  arrivals: number;
  renewedAt?: number;
}

/** How long a change is remembered after it settled: a lookup that began before it may still be answering. */
const REMEMBER_CHANGES_MS = 60_000;

export function createKeyLeases(opts: KeyLeaseOptions) {
  const now = opts.now ?? (() => performance.now());
  const maxAgeMs = opts.maxAgeMs ?? 1000;
  const horizonMs = opts.horizonMs ?? 100;
  const settleMs = opts.settleMs ?? 5000;
  const slots = new Map<string, Slot>();
  let sweptAt = -Infinity;
  /** Key and workspace ids changed lately: until when a lookup that began may have read them as they were. */
  const settling = new Map<string, number>();

  /** Whether a lookup that began at `began` may have read the key or its workspace before a change to them committed. */
  function isSettling(found: AuthenticatedKey, began: number): boolean {
    return [found.key.id, found.workspace.id].some((id) => (settling.get(id) ?? -Infinity) > began);
  }

  function settle(id: string): void {
    const at = now();
    for (const [other, until] of settling) if (until + REMEMBER_CHANGES_MS <= at) settling.delete(other);
    settling.set(id, at + settleMs);
  }

  /**
   * How many numbers the next renewal asks for: every request waiting for it (each is counted,
   * as its own statement would have), and more only when the key is busy here and was far from
   * its limit when this replica last looked.
   */
  function chunkFor(slot: Slot, at: number): { waiting: number; take: number } {
    const waiting = Math.min(slot.unserved, MAX_CHUNK);
    const lease = slot.lease;
    if (maxAgeMs === 0 || !lease || slot.renewedAt === undefined || isSettling(lease.found, at)) return { waiting, take: waiting };
    const wanted = Math.ceil((slot.arrivals / Math.max(at - slot.renewedAt, 1)) * horizonMs);
    // The statement caps it again by the shared count, which other replicas move too.
    const cap = Math.floor((lease.limit - lease.last - RESERVE) / 4);
    return { waiting, take: wanted < 2 || cap < 2 ? waiting : Math.max(waiting, Math.min(wanted, cap, MAX_CHUNK)) };
  }

  function serve(lease: Lease, at: number): AuthenticatedKey {
    const count = lease.next++;
    const { key, keyHash, workspace } = lease.found;
    return { key, keyHash, workspace, windowCount: count, windowResetSeconds: Math.max(1, Math.ceil((lease.windowEndsAt - at) / 1000)) };
  }

  /** Counts a new chunk for the key and serves the request that asked for it from it. */
  async function renew(slot: Slot, id: string, hash: Buffer): Promise<AuthenticatedKey | null> {
    const at = now();
    const { waiting, take } = chunkFor(slot, at);
    const arrivedBy = slot.arrived;
    const old = slot.lease;
    const unused = old ? Math.max(0, old.last - old.next + 1) : 0;
    // Given back by this statement, or lost with it: its answer may be lost after it committed,
    // and giving them back again would count less than was served.
    if (old) old.next = old.last + 1;
    slot.arrivals = 0;
    slot.renewedAt = at;
    const found = await opts.renew(hash, {
      waiting, take, defaultLimit: opts.defaultLimit, reserve: RESERVE,
      giveBack: unused > 0 ? { windowStart: old!.found.windowStart, count: unused } : null,
    });
    if (!found) {
      if (slots.get(id) === slot) slots.delete(id);
      return null;
    }
    // Times count from when the lookup began: the database's clock answered then, or later.
    const life = Math.min(maxAgeMs, found.windowResetMs, found.expiresInMs ?? Infinity);
    slot.lease = {
      found,
      limit: found.key.rateLimitPerMinute ?? opts.defaultLimit,
      next: found.windowCount - found.taken + 1,
      last: found.windowCount,
      arrivedBy,
      // Begun before a change to its key or workspace may have committed: it serves only the
      // requests that were already waiting (as their own lookups would have), none that come later.
      validUntil: isSettling(found, at) ? at : at + life,
      windowEndsAt: at + found.windowResetMs,
    };
    return serve(slot.lease, now());
  }

  /** Drops idle slots of keys no longer used here (at most once a second). */
  function sweep(at: number): void {
    if (at - sweptAt < 1000) return;
    sweptAt = at;
    for (const [id, slot] of slots) {
      if (slot.unserved === 0 && !slot.renewing && (!slot.lease || slot.lease.validUntil <= at)) slots.delete(id);
    }
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
        slots.set(id, (slot = { arrived: 0, unserved: 0, arrivals: 0 }));
      }
      const arrival = ++slot.arrived;
      slot.arrivals++;
      slot.unserved++;
      try {
        for (;;) {
          const lease = slot.lease;
          const at = now();
          if (lease && lease.next <= lease.last && (at < lease.validUntil || arrival <= lease.arrivedBy)) return serve(lease, at);
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
          return await attempt;
        }
      } finally {
        slot.unserved--;
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
