import assert from 'node:assert/strict';
import { LOCK_NAMESPACES, lockKey } from '../../src/db/advisory-lock.js';
import { MIGRATION_LOCK_ID } from '../../src/db/migrate.js';

describe('advisory-lock namespaces', () => {
  it('are one number each, and no key of theirs can be the migration lock', () => {
    const numbers = Object.values(LOCK_NAMESPACES);
    assert.equal(new Set(numbers).size, numbers.length, `a namespace shared: ${JSON.stringify(LOCK_NAMESPACES)}`);
    // A key is namespace · 2^32 + crc32(name): its namespace is the key's upper half.
    for (const n of numbers) assert.notEqual(Math.floor(MIGRATION_LOCK_ID / 2 ** 32), n);
    assert.equal(Math.floor(lockKey(LOCK_NAMESPACES.agentsOfWorkspace, 'ws_x') / 2 ** 32), LOCK_NAMESPACES.agentsOfWorkspace);
  });
});
