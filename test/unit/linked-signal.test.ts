import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import { linkedSignal } from '../../src/lib/linked-signal.js';

describe('linkedSignal', () => {
  it('aborts when any of its signals does, and at once when one already has', () => {
    const a = new AbortController();
    const b = new AbortController();
    const linked = linkedSignal(a.signal, b.signal);
    assert.equal(linked.signal.aborted, false);
    b.abort();
    assert.equal(linked.signal.aborted, true);
    assert.equal(linkedSignal(new AbortController().signal, AbortSignal.abort()).signal.aborted, true);
  });

  it('dispose() detaches it: the sources keep no listener, and their abort no longer reaches it', () => {
    const stop = new AbortController(); // long-lived, like the service's stop signal
    for (let i = 0; i < 100; i++) linkedSignal(stop.signal, new AbortController().signal).dispose();
    assert.equal(getEventListeners(stop.signal, 'abort').length, 0);
    const linked = linkedSignal(stop.signal);
    linked.dispose();
    stop.abort();
    assert.equal(linked.signal.aborted, false);
  });
});
