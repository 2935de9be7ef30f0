import assert from 'node:assert/strict';
import { generateToken, hashToken, parseToken } from '../../src/auth/api-key-token.js';

describe('API key tokens', () => {
  it('makes live and test tokens with ≥ 160 random bits and a valid checksum', () => {
    for (const mode of ['live', 'test'] as const) {
      const { token, prefix, hash } = generateToken(mode);
      assert.match(token, new RegExp(`^td_${mode}_[0-9A-Za-z]{46}$`));
      // 40 Base62 characters ≈ 238 bits of randomness
      assert.ok(40 * Math.log2(62) >= 160);
      assert.equal(parseToken(token), mode);
      assert.equal(prefix, token.slice(0, 12));
      assert.deepEqual(hash, hashToken(token));
      assert.equal(hash.length, 32);
    }
  });

  it('never repeats a token', () => {
    const seen = new Set(Array.from({ length: 2000 }, () => generateToken('live').token));
    assert.equal(seen.size, 2000);
  });

  it('rejects a token with one character changed (checksum)', () => {
    const { token } = generateToken('live');
    const i = 20;
    const changed = token.slice(0, i) + (token[i] === 'a' ? 'b' : 'a') + token.slice(i + 1);
    assert.equal(parseToken(changed), null);
  });

  it('rejects malformed tokens', () => {
    for (const bad of ['', 'td_live_', 'td_prod_' + 'a'.repeat(46), 'xx_live_' + 'a'.repeat(46), generateToken('live').token + 'x', 'td_live_' + '!'.repeat(46)]) {
      assert.equal(parseToken(bad), null, bad);
    }
  });
});
