/**
 * A signal aborted as soon as any of `signals` is (or at once if one already is), detached from
 * them by dispose(). Not AbortSignal.any: its composites stay attached to a long-lived source
 * (the service's stop signal) until garbage-collected, and Node 20 has had leaks there; these
 * are made per lock tenure or job run and let go of explicitly.
 */
export function linkedSignal(...signals: AbortSignal[]): { signal: AbortSignal; dispose(): void } {
  const linked = new AbortController();
  const abort = () => linked.abort();
  for (const s of signals) s.addEventListener('abort', abort, { once: true });
  if (signals.some((s) => s.aborted)) abort();
  return {
    signal: linked.signal,
    dispose: () => { for (const s of signals) s.removeEventListener('abort', abort); },
  };
}
