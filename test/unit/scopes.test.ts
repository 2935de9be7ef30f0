import assert from 'node:assert/strict';
import { ALL_SCOPES, expandScopes, isScope } from '../../src/kernel/scopes.js';

describe('scopes', () => {
  it('knows exactly the eleven scopes of the contract', () => {
    assert.deepEqual([...ALL_SCOPES].sort(), [
      'manage:agents', 'manage:keys', 'manage:settings', 'manage:webhooks',
      'read:analytics', 'read:contacts', 'read:messages', 'read:tickets',
      'write:contacts', 'write:messages', 'write:tickets',
    ]);
  });

  it('expands all to every scope in canonical order', () => {
    assert.deepEqual(expandScopes(['all']), [...ALL_SCOPES]);
  });

  it('treats all next to named scopes as every scope', () => {
    assert.deepEqual(expandScopes(['read:tickets', 'all']), [...ALL_SCOPES]);
  });

  it('returns named scopes deduplicated and in canonical order', () => {
    assert.deepEqual(expandScopes(['manage:keys', 'read:tickets', 'manage:keys']), ['read:tickets', 'manage:keys']);
  });

  it('rejects an unknown scope and names it', () => {
    assert.throws(() => expandScopes(['read:tickets', 'read:everything']), /unknown scope: read:everything/);
  });

  it('rejects an unknown scope even next to all', () => {
    assert.throws(() => expandScopes(['all', 'tickets:read']), /unknown scope: tickets:read/);
  });

  it('rejects an empty scope list', () => {
    assert.throws(() => expandScopes([]), /at least one scope/);
  });

  it('recognises scope names exactly (case-sensitive, no all)', () => {
    assert.equal(isScope('read:tickets'), true);
    assert.equal(isScope('READ:TICKETS'), false);
    assert.equal(isScope('all'), false);
    assert.equal(isScope(''), false);
  });
});
