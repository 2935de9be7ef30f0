/** Trimmed, lower-cased, without duplicates, in first-seen order. */
export function normalizeTags(tags: readonly string[]): string[] {
  return [...new Set(tags.map((t) => t.trim().toLowerCase()))];
}

/**
 * Applies a custom-fields patch: keys with null are removed, others set. Returns the new
 * object and whether anything changed.
 */
export function mergeCustomFields(current: Record<string, unknown>, patch: Record<string, unknown>): { value: Record<string, unknown>; changed: boolean } {
  const value = { ...current };
  let changed = false;
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) {
      if (k in value) { delete value[k]; changed = true; }
    } else if (value[k] !== v) {
      value[k] = v;
      changed = true;
    }
  }
  return { value, changed };
}

/** How many custom fields a contact or ticket may hold (after a merge). */
export const MAX_CUSTOM_FIELDS = 50;

/**
 * `{field: {from, to}}` for the keys whose values differ, named in snake_case as on the
 * wire: the `changes` of an *.updated event.
 */
export function changedFields<T extends object>(before: T, after: T, keys: readonly (keyof T & string)[]): Record<string, { from: unknown; to: unknown }> {
  const out: Record<string, { from: unknown; to: unknown }> = {};
  for (const k of keys) {
    if (JSON.stringify(before[k]) !== JSON.stringify(after[k])) out[k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)] = { from: before[k], to: after[k] };
  }
  return out;
}

/** The `from` side of `changedFields`: an event's `previous` (SPEC §4.6). */
export function previousValues(changes: Record<string, { from: unknown }>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(changes).map(([k, c]) => [k, c.from]));
}
