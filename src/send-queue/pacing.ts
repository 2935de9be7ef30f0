/**
 * Telegram's flood limits as sliding windows: at most `limit` sends in any `windowMs`.
 * A window remembers the times of its last `limit` sends, which is all an exact sliding
 * window needs. Pure: the send queue keeps the state in PostgreSQL (telegram_rate_windows)
 * so every replica paces against the same counts.
 */
export interface WindowRule {
  limit: number;
  windowMs: number;
}

export interface WindowState {
  sentAt: number[];
  blockedUntil: number | null;
}

/** The earliest time `cost` more sends fit the window (now when they fit already). */
export function earliestSlot(state: WindowState, rule: WindowRule, now: number, cost = 1): number {
  const need = Math.min(cost, rule.limit);
  const recent = state.sentAt.filter((t) => t > now - rule.windowMs).sort((a, b) => a - b);
  let at = now;
  const over = recent.length + need - rule.limit;
  if (over > 0) at = recent[over - 1] + rule.windowMs;
  if (state.blockedUntil !== null && state.blockedUntil > at) at = state.blockedUntil;
  return at;
}

/**
 * Records `cost` sends at `at`, keeping only what the window still needs. `at` may lie a moment
 * after `now` (a send claimed ahead of its slot): what is forgotten is what left the window by
 * `now`, since a later claim may still place a send between `now` and `at` and must count it.
 *
 * earliestSlot stays exact, or errs late, with such sends ahead in the window: it counts every
 * remembered send after `now - windowMs` as if it were before the new one, which over-counts
 * any window the new one falls in.
 */
export function take(state: WindowState, rule: WindowRule, at: number, cost = 1, now = at): WindowState {
  const from = Math.min(now, at) - rule.windowMs;
  const sent = [...state.sentAt.filter((t) => t > from), ...Array(Math.min(cost, rule.limit)).fill(at)].sort((a, b) => a - b);
  return { sentAt: sent.slice(-rule.limit), blockedUntil: state.blockedUntil !== null && state.blockedUntil > at ? state.blockedUntil : null };
}
