/** Every scope a key can hold (SPEC §4.1). */
export const ALL_SCOPES = [
  'read:tickets', 'write:tickets',
  'read:contacts', 'write:contacts',
  'read:messages', 'write:messages',
  'read:analytics',
  'manage:agents', 'manage:settings', 'manage:webhooks', 'manage:keys',
] as const;

export type Scope = (typeof ALL_SCOPES)[number];

export function isScope(s: string): s is Scope {
  return (ALL_SCOPES as readonly string[]).includes(s);
}

/**
 * `all` means every scope; otherwise the list, deduplicated, in canonical order.
 * Throws on an empty list and on unknown names (also next to `all`: a typo is never
 * silently swallowed).
 */
export function expandScopes(requested: readonly string[]): Scope[] {
  if (requested.length === 0) throw new Error('at least one scope is required');
  const unknown = requested.filter((s) => s !== 'all' && !isScope(s));
  // Naming the valid ones turns a typo into a one-step fix.
  if (unknown.length) throw new Error(`unknown scope${unknown.length > 1 ? 's' : ''}: ${unknown.join(', ')}; valid scopes: all, ${ALL_SCOPES.join(', ')}`);
  if (requested.includes('all')) return [...ALL_SCOPES];
  return ALL_SCOPES.filter((s) => requested.includes(s));
}
