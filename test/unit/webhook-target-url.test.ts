/**
 * The registration-time SSRF check (src/webhooks/target-url.ts): which addresses are blocked
 * (blockedRange) and why a URL cannot be a webhook target (targetUrlProblem), with
 * WEBHOOK_ALLOW_PRIVATE_TARGETS off and on. The send-time check (the address actually
 * connected to) is tested in test/integration/webhook-ssrf.test.ts.
 */
import assert from 'node:assert/strict';
import { blockedRange, targetUrlProblem } from '../../src/webhooks/target-url.js';

const STRICT = { allowPrivate: false };
const LAX = { allowPrivate: true };

/** Address → the range it must be reported in (ipaddr.js names). */
const BLOCKED_V4: Array<[string, string]> = [
  ['127.0.0.1', 'loopback'],
  ['127.255.255.254', 'loopback'],
  ['10.0.0.1', 'private'],
  ['10.255.255.255', 'private'],
  ['172.16.0.1', 'private'],
  ['172.31.255.254', 'private'],
  ['192.168.0.1', 'private'],
  ['192.168.255.255', 'private'],
  ['169.254.169.254', 'linkLocal'], // AWS / GCP / Azure metadata
  ['169.254.0.1', 'linkLocal'],
  ['100.64.0.1', 'carrierGradeNat'],
  ['100.100.100.200', 'carrierGradeNat'], // Alibaba Cloud metadata
  ['100.127.255.254', 'carrierGradeNat'],
  ['0.0.0.0', 'unspecified'],
  ['0.1.2.3', 'unspecified'],
  ['255.255.255.255', 'broadcast'],
  ['224.0.0.1', 'multicast'],
  ['239.255.255.250', 'multicast'],
  ['192.0.0.1', 'reserved'],
  ['198.18.0.1', 'reserved'],
  ['240.0.0.1', 'reserved'],
];

const BLOCKED_V6: Array<[string, string]> = [
  ['::1', 'loopback'],
  ['0:0:0:0:0:0:0:1', 'loopback'],
  ['::', 'unspecified'],
  ['fe80::1', 'linkLocal'],
  ['fc00::1', 'uniqueLocal'],
  ['fd00:ec2::254', 'uniqueLocal'], // AWS metadata over IPv6
  ['ff02::1', 'multicast'],
  // IPv4-mapped: judged as the IPv4 address they carry.
  ['::ffff:127.0.0.1', 'loopback'],
  ['::ffff:7f00:1', 'loopback'],
  ['::ffff:10.0.0.1', 'private'],
  ['::ffff:169.254.169.254', 'linkLocal'],
  ['::ffff:a9fe:a9fe', 'linkLocal'],
  ['::ffff:100.64.0.1', 'carrierGradeNat'],
  ['::ffff:0.0.0.0', 'unspecified'],
  // NAT64 can reach IPv4 space: not "unicast" either.
  ['64:ff9b::7f00:1', 'rfc6052'],
  ['64:ff9b::a9fe:a9fe', 'rfc6052'],
];

const PUBLIC = ['8.8.8.8', '1.1.1.1', '93.184.215.14', '172.15.255.255', '172.32.0.1', '100.63.255.255', '100.128.0.1',
  '169.253.255.255', '11.0.0.1', '2606:4700:4700::1111', '2a00:1450:4001:800::200e'];

describe('webhook target URLs (SSRF, first line)', () => {
  describe('blockedRange', () => {
    for (const [address, range] of [...BLOCKED_V4, ...BLOCKED_V6]) {
      it(`${address} is blocked as ${range}`, () => assert.equal(blockedRange(address), range));
    }

    it('public unicast addresses (v4, v6) are not blocked', () => {
      for (const a of PUBLIC) assert.equal(blockedRange(a), null, a);
    });

    it('an IPv4-mapped IPv6 address is blocked even when the IPv4 one is public (the connect-time guard refuses them all)', () => {
      assert.equal(blockedRange('::ffff:8.8.8.8'), 'ipv4Mapped');
      assert.equal(blockedRange('::ffff:127.0.0.1'), 'loopback');
      assert.equal(blockedRange('::ffff:10.1.2.3'), 'private');
    });

    it('what is not an IP address is not judged here (host names are checked at connect time)', () => {
      for (const a of ['example.com', 'localhost', '', '127.0.0.1.nip.io', '[::1]', '256.0.0.1', '1.2.3']) {
        assert.equal(blockedRange(a), null, a);
      }
    });
  });

  describe('targetUrlProblem with private targets refused (production)', () => {
    it('accepts a public https URL, with a port, path and query', () => {
      for (const u of ['https://hooks.example.com/topicdesk', 'https://hooks.example.com:8443/a/b?c=d', 'https://93.184.215.14/hook',
        'https://[2606:4700:4700::1111]/hook', 'HTTPS://Hooks.Example.COM/x']) {
        assert.equal(targetUrlProblem(u, STRICT), null, u);
      }
    });

    it('refuses plain http', () => {
      assert.match(targetUrlProblem('http://hooks.example.com/x', STRICT)!, /^must use https \(plain http is allowed only with WEBHOOK_ALLOW_PRIVATE_TARGETS=true\)$/);
    });

    it('refuses other schemes', () => {
      for (const u of ['ftp://hooks.example.com/x', 'file:///etc/passwd', 'gopher://hooks.example.com/', 'ws://hooks.example.com/', 'javascript:alert(1)', 'data:text/plain,hi']) {
        assert.equal(targetUrlProblem(u, STRICT), 'must use https', u);
      }
    });

    it('refuses what is not an absolute URL', () => {
      for (const u of ['', 'hooks.example.com/x', '/relative/path', 'https://', 'not a url', 'https://exa mple.com/']) {
        assert.equal(targetUrlProblem(u, STRICT), 'is not a valid absolute URL', JSON.stringify(u));
      }
    });

    it('refuses credentials in the URL (user, user:password, and the @ trick)', () => {
      for (const u of ['https://user:pw@hooks.example.com/', 'https://user@hooks.example.com/', 'https://:pw@hooks.example.com/',
        'https://hooks.example.com@127.0.0.1/', 'https://127.0.0.1:443@hooks.example.com/']) {
        assert.equal(targetUrlProblem(u, STRICT), 'must not contain credentials', u);
      }
    });

    it('refuses a #fragment', () => {
      assert.equal(targetUrlProblem('https://hooks.example.com/x#frag', STRICT), 'must not contain a #fragment');
    });

    for (const [address, range] of BLOCKED_V4) {
      it(`refuses the literal ${address} (${range})`, () => {
        assert.equal(targetUrlProblem(`https://${address}/hook`, STRICT), `points to ${address}, a ${range} address: webhooks may only target public addresses`);
        assert.ok(targetUrlProblem(`https://${address}:8443/hook`, STRICT), 'with a port too');
      });
    }

    for (const [address, range] of BLOCKED_V6) {
      it(`refuses the literal [${address}] (${range})`, () => {
        const problem = targetUrlProblem(`https://[${address}]/hook`, STRICT);
        assert.ok(problem, 'refused');
        // The URL parser writes the address in its shortest form (::ffff:127.0.0.1 → ::ffff:7f00:1).
        assert.match(problem, new RegExp(`^points to \\S+, a ${range} address: webhooks may only target public addresses$`));
      });
    }

    it('refuses loopback written in the other IPv4 notations the URL parser understands', () => {
      for (const host of ['2130706433', '0x7f000001', '0177.0.0.1', '127.1', '127.0.1', '0x7f.1', '%31%32%37.0.0.1', '127.0.0.1.', '0']) {
        const problem = targetUrlProblem(`https://${host}/hook`, STRICT);
        assert.ok(problem, `${host} accepted`);
        assert.match(problem, /^points to (127\.0\.0\.1|0\.0\.0\.0), a (loopback|unspecified) address/, host);
      }
      assert.match(targetUrlProblem('https://0xa9fea9fe/latest/meta-data', STRICT)!, /169\.254\.169\.254, a linkLocal address/);
      assert.match(targetUrlProblem('https://167772161/', STRICT)!, /10\.0\.0\.1, a private address/);
    });

    it('refuses localhost and *.localhost, whatever the case', () => {
      for (const host of ['localhost', 'LOCALHOST', 'LocalHost', 'api.localhost', 'a.b.localhost']) {
        assert.match(targetUrlProblem(`https://${host}/hook`, STRICT)!, /which is a loopback name: webhooks may only target public addresses$/, host);
        assert.ok(targetUrlProblem(`https://${host}:8443/hook`, STRICT), `${host} with a port`);
      }
    });

    it('refuses localhost written as a fully qualified name (trailing dot), which is the same name', () => {
      for (const host of ['localhost.', 'api.localhost.', 'localhost%2e']) {
        assert.ok(targetUrlProblem(`https://${host}/hook`, STRICT), `https://${host}/hook was accepted`);
      }
    });

    it('does not mistake names that merely contain "localhost" for it', () => {
      for (const host of ['localhost.example.com', 'notlocalhost', 'mylocalhost.com', 'localhost-proxy.example.com']) {
        assert.equal(targetUrlProblem(`https://${host}/hook`, STRICT), null, host);
      }
    });

    it('leaves host names to the connect-time check (a name resolving to 127.0.0.1 passes here)', () => {
      assert.equal(targetUrlProblem('https://127.0.0.1.nip.io/hook', STRICT), null);
      assert.equal(targetUrlProblem('https://hooks.example.test/hook', STRICT), null);
    });
  });

  describe('targetUrlProblem with WEBHOOK_ALLOW_PRIVATE_TARGETS=true', () => {
    it('accepts plain http and every private, loopback and metadata literal', () => {
      for (const [address] of BLOCKED_V4) {
        assert.equal(targetUrlProblem(`http://${address}:8080/hook`, LAX), null, address);
        assert.equal(targetUrlProblem(`https://${address}/hook`, LAX), null, address);
      }
      for (const [address] of BLOCKED_V6) assert.equal(targetUrlProblem(`http://[${address}]:8080/hook`, LAX), null, address);
      for (const host of ['localhost', 'api.localhost', '2130706433']) assert.equal(targetUrlProblem(`http://${host}:3000/hook`, LAX), null, host);
    });

    it('still refuses credentials, other schemes, fragments and what is not a URL', () => {
      assert.equal(targetUrlProblem('http://user:pw@127.0.0.1:8080/hook', LAX), 'must not contain credentials');
      assert.equal(targetUrlProblem('https://user@hooks.example.com/', LAX), 'must not contain credentials');
      assert.equal(targetUrlProblem('ftp://127.0.0.1/hook', LAX), 'must use https');
      assert.equal(targetUrlProblem('ftp://hooks.example.com/', LAX), 'must use https');
      assert.equal(targetUrlProblem('file:///etc/passwd', LAX), 'must use https');
      assert.equal(targetUrlProblem('http://127.0.0.1:8080/hook#x', LAX), 'must not contain a #fragment');
      assert.equal(targetUrlProblem('127.0.0.1:8080/hook', LAX), 'is not a valid absolute URL');
    });
  });
});
