/**
 * The first line of the SSRF guard: what an endpoint URL may look like, checked when it is
 * registered or changed. A host name can still resolve to a private address later (or
 * change its answer: DNS rebinding), so the sender checks the address it actually connects
 * to as well (webhook-sender.ts); this check makes literal addresses fail early and visibly.
 */
import ipaddr from 'ipaddr.js';

export interface TargetPolicy {
  /** WEBHOOK_ALLOW_PRIVATE_TARGETS: loopback/private addresses and plain http allowed. */
  allowPrivate: boolean;
}

/** The address's range when webhooks may not target it ('loopback', 'private', …), else null. */
export function blockedRange(address: string): string | null {
  if (!ipaddr.isValid(address)) return null;
  const parsed = ipaddr.parse(address);
  // The sender's guard refuses every IPv4-mapped address (range ipv4Mapped); name the
  // IPv4 range it carries when that is the more telling reason.
  if (parsed.kind() === 'ipv6' && (parsed as ipaddr.IPv6).isIPv4MappedAddress()) {
    const inner = (parsed as ipaddr.IPv6).toIPv4Address().range();
    return inner === 'unicast' ? 'ipv4Mapped' : inner;
  }
  const range = parsed.range();
  return range === 'unicast' ? null : range;
}

/** Why `raw` cannot be a webhook target, or null when it can. */
export function targetUrlProblem(raw: string, policy: TargetPolicy): string | null {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return 'is not a valid absolute URL';
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return 'must use https';
  if (url.protocol === 'http:' && !policy.allowPrivate) return 'must use https (plain http is allowed only with WEBHOOK_ALLOW_PRIVATE_TARGETS=true)';
  if (url.username || url.password) return 'must not contain credentials';
  if (url.hash) return 'must not contain a #fragment';
  if (policy.allowPrivate) return null;
  // The WHATWG parser has already normalised 0x7f000001, 127.1 and friends to dotted quads.
  // "localhost." is the same DNS name as "localhost".
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1').replace(/\.$/, '');
  const range = blockedRange(host);
  if (range) return `points to ${host}, a ${range} address: webhooks may only target public addresses`;
  if (host === 'localhost' || host.endsWith('.localhost')) return `points to ${host}, which is a loopback name: webhooks may only target public addresses`;
  return null;
}
