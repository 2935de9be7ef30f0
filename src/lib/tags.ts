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
