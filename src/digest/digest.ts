/**
 * The text of the daily digest and of /stats in General (SPEC §6): one formatter for both, so
 * the two cannot drift. Pure: figures in, plain text out (sent without parse_mode, so nothing
 * needs escaping), at most 4096 characters (Telegram's limit for one message).
 */
import { DateTime } from 'luxon';

export const TELEGRAM_TEXT_LIMIT = 4096;
const SUBJECT_MAX = 80;
const TARGETS = [['first_response', 'first response'], ['next_response', 'next response'], ['resolution', 'resolution']] as const;

export interface TargetFigures { due: number; met: number; breached: number; compliance_percent: number | null }

export interface DigestFigures {
  /** yesterday: the digest; today: /stats (today so far). */
  period: 'yesterday' | 'today';
  /** The reported day in the workspace's time zone, `2026-12-03`. */
  localDate: string;
  timezone: string;
  /** When the figures were read (overdue times are measured from it). */
  now: Date;
  created: number;
  resolved: number;
  firstResponse: { count: number; p50Seconds: number | null; p90Seconds: number | null };
  sla: Record<(typeof TARGETS)[number][0], TargetFigures>;
  backlog: { total: number; unassigned: number; atRisk: number; breachedOpen: number };
  overdue: { number: number; subject: string; slaDueAt: Date; topicChatId: number | null; topicThreadId: number | null }[];
}

/** A topic's link for members of the group: https://t.me/c/<id without -100>/<thread>; null for a chat that is not a supergroup. */
export function topicLink(chatId: number, threadId: number): string | null {
  const s = String(chatId);
  return s.startsWith('-100') && s.length > 4 ? `https://t.me/c/${s.slice(4)}/${threadId}` : null;
}

/** `45s`, `14m`, `3h 05m`, `2d 4h`. */
export function duration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  const minutes = Math.floor(s / 60);
  if (minutes < 60) return `${minutes}m`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours}h ${String(minutes % 60).padStart(2, '0')}m`;
  return `${Math.floor(hours / 24)}d ${hours % 24}h`;
}

const orDash = (seconds: number | null) => (seconds === null ? '—' : duration(seconds));

function slaLine(f: DigestFigures): string {
  const breached = TARGETS.reduce((n, [t]) => n + f.sla[t].breached, 0);
  const parts = TARGETS.map(([t, label]) => {
    const x = f.sla[t];
    return `${label} ${x.compliance_percent === null ? '—' : `${x.compliance_percent}% (${x.met} of ${x.due})`}`;
  });
  return `SLA: ${breached === 0 ? 'no breaches' : `${breached} breached`} · ${parts.join(' · ')}`;
}

function overdueLines(f: DigestFigures): string[] {
  if (!f.overdue.length) return ['Most overdue: none'];
  const lines = ['Most overdue:'];
  for (const t of f.overdue) {
    const one = t.subject.replace(/\s+/g, ' ').trim(); // one line per ticket
    const subject = one.length > SUBJECT_MAX ? `${one.slice(0, SUBJECT_MAX - 1)}…` : one;
    lines.push(`#${t.number} ${subject} — ${duration((f.now.getTime() - t.slaDueAt.getTime()) / 1000)} overdue`);
    const link = t.topicChatId !== null && t.topicThreadId !== null ? topicLink(t.topicChatId, t.topicThreadId) : null;
    if (link) lines.push(link);
  }
  return lines;
}

export function formatDigest(f: DigestFigures): string {
  const day = DateTime.fromISO(f.localDate, { locale: 'en-GB' }).toFormat('ccc d LLL yyyy');
  const title = f.period === 'yesterday' ? `📊 Daily digest for ${day} (${f.timezone})` : `📊 Today so far, ${day} (${f.timezone})`;
  const fr = f.firstResponse;
  const text = [
    title,
    `Tickets: ${f.created} new · ${f.resolved} resolved`,
    `First response: p50 ${orDash(fr.p50Seconds)} · p90 ${orDash(fr.p90Seconds)} (${fr.count} answered)`,
    slaLine(f),
    `Backlog now: ${f.backlog.total} open (${f.backlog.unassigned} unassigned) · at risk ${f.backlog.atRisk} · breached and open ${f.backlog.breachedOpen}`,
    ...overdueLines(f),
  ].join('\n');
  // Five overdue lines with capped subjects stay far below the limit; the cut is a last guard.
  return text.length > TELEGRAM_TEXT_LIMIT ? `${text.slice(0, TELEGRAM_TEXT_LIMIT - 1)}…` : text;
}
