/**
 * Business time for SLA clocks (SPEC §5): how much working time lies between two instants,
 * and when a number of working minutes will have elapsed. Pure: Date in, Date out (UTC instants).
 *
 * A calendar is a time zone, weekly intervals of wall-clock time ("09:00"–"17:30", end may be
 * "24:00"; ISO day 1 = Monday) and holidays (whole local days off). `null` = wall time, 24/7.
 *
 * Wall times → instants. A wall time on a local date means the FIRST instant at which the
 * zone's clock reads that time or later. So on a fall-back night an ambiguous time is its first
 * occurrence, and on a spring-forward night a time in the gap is the instant the gap ends
 * (01:00–04:00 across the gap is 2 real hours, across the fall-back 4; 02:00–02:30 in a
 * one-hour gap is empty). This rule is monotonic, so intervals that do not overlap as wall
 * times never overlap as instants. Luxon's own fromObject/set are not used for this: they
 * resolve an ambiguous time with a provisional offset taken from `now` (or from the source
 * DateTime), so the answer would depend on the season the server runs in.
 *
 * Resolution is 1 ms; minutes may be fractional and are rounded to whole milliseconds.
 */
import { DateTime, IANAZone } from 'luxon';
import type { FieldError } from '../kernel/errors.js';

export interface WeeklyInterval {
  day: 1 | 2 | 3 | 4 | 5 | 6 | 7;
  start: string;
  end: string;
}

export interface BusinessHours {
  timezone: string;
  weekly: WeeklyInterval[];
  holidays: string[];
}

const MINUTE = 60_000;
const DAY = 86_400_000;
const DAY_NAMES = ['', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday', 'Sunday'];
/** A stretch this long with no working time at all means the calendar never works again. */
const MAX_IDLE_DAYS = 3 * 366;
/** Nothing an SLA asks for lies further ahead; beyond this, give up rather than walk on. */
const MAX_SCAN_DAYS = 100 * 366;

const HHMM = /^([01]\d|2[0-3]):([0-5]\d)$/;
const ISO_DATE = /^(\d{4})-(\d{2})-(\d{2})$/;

// ---------------------------------------------------------------------------------------------
// Validation

/** Problems with a calendar, each with its field path (`business_hours.weekly[2].end`); [] = valid. */
export function validateBusinessHours(bh: BusinessHours): FieldError[] {
  const errors: FieldError[] = [];
  const root = 'business_hours';
  if (bh === null || typeof bh !== 'object') return [{ field: root, error: 'must be an object or null', received: bh }];

  if (typeof bh.timezone !== 'string' || !IANAZone.isValidZone(bh.timezone)) {
    errors.push({ field: `${root}.timezone`, error: 'unknown time zone: use an IANA name such as "Europe/Berlin"', received: bh.timezone });
  }

  if (!Array.isArray(bh.weekly)) {
    errors.push({ field: `${root}.weekly`, error: 'must be a list of intervals', received: bh.weekly });
  } else if (bh.weekly.length === 0) {
    errors.push({ field: `${root}.weekly`, error: 'a week needs at least one working interval' });
  } else {
    const good: { i: number; day: number; start: number; end: number }[] = [];
    bh.weekly.forEach((iv, i) => {
      const f = `${root}.weekly[${i}]`;
      if (iv === null || typeof iv !== 'object') {
        errors.push({ field: f, error: 'must be an object {day, start, end}', received: iv });
        return;
      }
      const before = errors.length;
      if (!Number.isInteger(iv.day) || iv.day < 1 || iv.day > 7) {
        errors.push({ field: `${f}.day`, error: 'must be 1 (Monday) to 7 (Sunday)', received: iv.day });
      }
      const start = parseHHMM(iv.start);
      if (start === null) {
        const error = iv.start === '24:00' ? '24:00 is allowed only as an end' : 'must be a time "HH:MM" (00:00–23:59)';
        errors.push({ field: `${f}.start`, error, received: iv.start });
      }
      const end = iv.end === '24:00' ? 1440 : parseHHMM(iv.end);
      if (end === null) errors.push({ field: `${f}.end`, error: 'must be a time "HH:MM" (00:01–24:00)', received: iv.end });
      if (start !== null && end !== null && end <= start) {
        errors.push({ field: `${f}.end`, error: 'must be after start: an interval may not cross midnight, so split it at 24:00', received: iv.end });
      }
      if (errors.length === before) good.push({ i, day: iv.day, start: start!, end: end! });
    });
    // Overlaps per day: sweep in start order, remembering the interval that reaches furthest.
    for (let day = 1; day <= 7; day++) {
      const list = good.filter((g) => g.day === day).sort((a, b) => a.start - b.start || a.i - b.i);
      let reach: (typeof list)[number] | null = null;
      for (const g of list) {
        if (reach && g.start < reach.end) {
          const [first, second] = reach.i < g.i ? [reach, g] : [g, reach];
          errors.push({
            field: `${root}.weekly[${second.i}]`,
            error: `overlaps weekly[${first.i}] (${fmt(first.start)}–${fmt(first.end)}) on ${DAY_NAMES[day]}`,
            received: bh.weekly[second.i],
          });
        }
        if (!reach || g.end > reach.end) reach = g;
      }
    }
  }

  if (!Array.isArray(bh.holidays)) {
    errors.push({ field: `${root}.holidays`, error: 'must be a list of dates "YYYY-MM-DD"', received: bh.holidays });
  } else {
    bh.holidays.forEach((h, i) => {
      if (typeof h !== 'string' || !ISO_DATE.test(h)) {
        errors.push({ field: `${root}.holidays[${i}]`, error: 'must be a date "YYYY-MM-DD"', received: h });
      } else if (parseDate(h) === null) {
        errors.push({ field: `${root}.holidays[${i}]`, error: 'no such date', received: h });
      }
    });
  }
  return errors;
}

function parseHHMM(s: unknown): number | null {
  const m = typeof s === 'string' ? HHMM.exec(s) : null;
  return m ? Number(m[1]) * 60 + Number(m[2]) : null;
}

const fmt = (min: number) => `${String(Math.floor(min / 60)).padStart(2, '0')}:${String(min % 60).padStart(2, '0')}`;

/** "YYYY-MM-DD" → civil day number (days since 1970-01-01), or null when no such date. */
function parseDate(s: string): number | null {
  const m = ISO_DATE.exec(s);
  if (!m) return null;
  const d = DateTime.utc(Number(m[1]), Number(m[2]), Number(m[3]));
  return d.isValid && d.toISODate() === s ? Math.round(d.toMillis() / DAY) : null;
}

// ---------------------------------------------------------------------------------------------
// The calendar, compiled once per object (calendars are treated as immutable: do not mutate one after use)

interface Compiled {
  zone: IANAZone;
  /** byDay[isoWeekday] = sorted, non-overlapping [startMinute, endMinute) of wall time. */
  byDay: [number, number][][];
  holidays: Set<number>;
  /** Working ms in a week without holidays or offset changes. */
  weekMs: number;
}

const compiledCache = new WeakMap<BusinessHours, Compiled>();

function compile(bh: BusinessHours): Compiled {
  const hit = compiledCache.get(bh);
  if (hit) return hit;
  const errors = validateBusinessHours(bh);
  if (errors.length > 0) throw new Error(`invalid business hours: ${errors.map((e) => `${e.field} ${e.error}`).join('; ')}`);
  const byDay: [number, number][][] = Array.from({ length: 8 }, () => []);
  for (const iv of bh.weekly) byDay[iv.day].push([parseHHMM(iv.start)!, iv.end === '24:00' ? 1440 : parseHHMM(iv.end)!]);
  for (const list of byDay) list.sort((a, b) => a[0] - b[0]);
  const weekMs = byDay.flat().reduce((sum, [s, e]) => sum + (e - s) * MINUTE, 0);
  const c: Compiled = { zone: IANAZone.create(bh.timezone), byDay, holidays: new Set(bh.holidays.map((h) => parseDate(h)!)), weekMs };
  compiledCache.set(bh, c);
  return c;
}

// ---------------------------------------------------------------------------------------------
// Days of one calendar, as instants

/**
 * Answers "which instants are working time on local day n" for one call. Offsets are looked
 * up at q(n) = 14 h before day n's midnight-as-UTC, which is before any instant of day n
 * (offsets are at most +14 h); q(n+3) is after every instant of day n (at least −12 h). The
 * zone changes offset at most once in such a window (tzdb 2010–2040: changes are ≥ 21 days
 * apart), so every instant of day n has the offset at q(n) or at q(n+3).
 */
class Days {
  constructor(private readonly c: Compiled) {}

  /** The local day (civil day number) an instant falls on. */
  dayOf(t: number): number {
    const d = DateTime.fromMillis(t, { zone: this.c.zone });
    return Math.round(Date.UTC(d.year, d.month - 1, d.day) / DAY);
  }

  /** Working intervals [start, end) of local day n, in ms, ascending, none empty. */
  intervals(n: number): [number, number][] {
    const wall = this.c.byDay[isoWeekday(n)];
    if (wall.length === 0 || this.c.holidays.has(n)) return [];
    const before = this.offsetAt(n);
    if (before === this.offsetAt(n + 3)) {
      // No offset change around this day: wall minutes are real minutes from midnight.
      const midnight = n * DAY - before * MINUTE;
      return wall.map(([s, e]) => [midnight + s * MINUTE, midnight + e * MINUTE]);
    }
    const out: [number, number][] = [];
    for (const [s, e] of wall) {
      const from = this.resolve(n, s);
      const to = e === 1440 ? this.resolve(n + 1, 0) : this.resolve(n, e);
      if (to > from) out.push([from, to]);
    }
    return out;
  }

  /**
   * When local days n..n+6 are a plain week (no holiday, no offset change: the window q(n)..q(n+10)
   * holds at most one change, tzdb changes being ≥ 21 days apart), its [start, end) in ms; else null.
   */
  plainWeek(n: number): [number, number] | null {
    const o = this.offsetAt(n);
    if (o !== this.offsetAt(n + 10)) return null;
    for (let d = n; d < n + 7; d++) if (this.c.holidays.has(d)) return null;
    return [n * DAY - o * MINUTE, (n + 7) * DAY - o * MINUTE];
  }

  get weekMs(): number {
    return this.c.weekMs;
  }

  /** The first instant at which the clock reads `minute` of local day n or later. */
  private resolve(n: number, minute: number): number {
    const local = n * DAY + minute * MINUTE; // the wall reading, written as if it were UTC
    const before = this.offsetAt(n);
    const after = this.offsetAt(n + 3);
    const candidates = [local - before * MINUTE, local - after * MINUTE].filter((t, i) => this.c.zone.offset(t) === (i === 0 ? before : after));
    if (candidates.length > 0) return Math.min(...candidates);
    // In the spring-forward gap: the answer is the instant the clock jumps, found by bisection.
    let lo = local - after * MINUTE; // still on the old offset
    let hi = local - before * MINUTE; // already on the new one
    while (hi - lo > 1) {
      const mid = Math.floor((lo + hi) / 2);
      if (this.c.zone.offset(mid) === before) lo = mid;
      else hi = mid;
    }
    return hi;
  }

  private offsetAt(n: number): number {
    const key = `${this.c.zone.name}|${n}`;
    let o = offsetCache.get(key);
    if (o === undefined) {
      o = this.c.zone.offset(n * DAY - 14 * 3_600_000);
      if (offsetCache.size >= OFFSET_CACHE_MAX) offsetCache.clear();
      offsetCache.set(key, o);
    }
    return o;
  }
}

/**
 * Zone offsets at q(n), shared by all calls: Luxon's lookup costs ~10 µs (Intl formatting) and
 * the SLA sweep asks about the same zones and weeks over and over. A pure memo, bounded.
 */
const offsetCache = new Map<string, number>();
const OFFSET_CACHE_MAX = 100_000;

/** ISO weekday (1 = Monday) of civil day number n; day 0 (1970-01-01) was a Thursday. */
const isoWeekday = (n: number) => ((((n + 3) % 7) + 7) % 7) + 1;

function toMs(d: Date, what: string): number {
  const t = d instanceof Date ? d.getTime() : NaN;
  if (!Number.isFinite(t)) throw new RangeError(`${what} must be a valid Date`);
  return t;
}

// ---------------------------------------------------------------------------------------------
// The public functions

/** Is instant t working time? Intervals are half-open: an interval's end is not working time. */
export function isWorkingTime(t: Date, cal: BusinessHours | null): boolean {
  const ms = toMs(t, 't');
  if (cal === null) return true;
  const days = new Days(compile(cal));
  const n = days.dayOf(ms);
  // An instant after a fall-back across midnight may already belong to the next day.
  return [n, n + 1].some((d) => days.intervals(d).some(([s, e]) => s <= ms && ms < e));
}

/** The earliest working instant ≥ t (t itself when it is working time). */
export function nextWorkingStart(t: Date, cal: BusinessHours | null): Date {
  const ms = toMs(t, 't');
  if (cal === null) return new Date(ms);
  const days = new Days(compile(cal));
  const first = days.dayOf(ms);
  let idle = 0;
  for (let n = first; n - first <= MAX_SCAN_DAYS; n++) {
    const list = days.intervals(n);
    for (const [s, e] of list) if (e > ms) return new Date(Math.max(s, ms));
    idle = list.length === 0 ? idle + 1 : 0;
    if (idle > MAX_IDLE_DAYS) break;
  }
  throw new Error(`no working time within ${MAX_IDLE_DAYS} days after ${new Date(ms).toISOString()}: check the business hours`);
}

/**
 * The earliest instant t ≥ start such that businessMsBetween(start, t) = minutes · 60 000.
 * So 0 minutes gives `start` itself, even outside working time, and a due time that uses up an
 * interval exactly is that interval's end (not the next interval's start). For minutes > 0 the
 * result r always satisfies: the millisecond before r is working time (r lies in (start, end]
 * of some interval).
 */
export function addBusinessMinutes(start: Date, minutes: number, cal: BusinessHours | null): Date {
  const t = toMs(start, 'start');
  if (typeof minutes !== 'number' || !Number.isFinite(minutes) || minutes < 0) {
    throw new RangeError(`minutes must be a non-negative number, got ${String(minutes)}`);
  }
  let remaining = Math.round(minutes * MINUTE);
  if (cal === null || remaining === 0) return new Date(t + remaining);
  const days = new Days(compile(cal));
  const first = days.dayOf(t);
  let idle = 0;
  for (let n = first; n - first <= MAX_SCAN_DAYS; n++) {
    // Whole plain weeks that do not finish the count are skipped in one step.
    for (let week = days.plainWeek(n); week && week[0] >= t && remaining > days.weekMs; week = days.plainWeek(n)) {
      remaining -= days.weekMs;
      n += 7;
    }
    const list = days.intervals(n);
    for (const [s, e] of list) {
      if (e <= t) continue;
      const from = Math.max(s, t);
      if (e - from >= remaining) return new Date(from + remaining);
      remaining -= e - from;
    }
    idle = list.length === 0 ? idle + 1 : 0;
    if (idle > MAX_IDLE_DAYS) {
      throw new Error(`no working time within ${MAX_IDLE_DAYS} days after ${new Date(n * DAY).toISOString().slice(0, 10)}: check the business hours`);
    }
  }
  throw new Error(`${minutes} business minutes after ${new Date(t).toISOString()} lie more than ${MAX_SCAN_DAYS} days ahead`);
}

/** Working milliseconds in [a, b); 0 when b ≤ a. */
export function businessMsBetween(a: Date, b: Date, cal: BusinessHours | null): number {
  const from = toMs(a, 'a');
  const to = toMs(b, 'b');
  if (to <= from) return 0;
  if (cal === null) return to - from;
  const days = new Days(compile(cal));
  const last = days.dayOf(to) + 1; // an instant may belong to the next local day (see isWorkingTime)
  let total = 0;
  for (let n = days.dayOf(from); n <= last; n++) {
    for (let week = days.plainWeek(n); week && week[0] >= from && week[1] <= to; week = days.plainWeek(n)) {
      total += days.weekMs;
      n += 7;
    }
    for (const [s, e] of days.intervals(n)) {
      const lo = Math.max(s, from);
      const hi = Math.min(e, to);
      if (hi > lo) total += hi - lo;
    }
  }
  return total;
}

/** Working seconds in [a, b) (fractional when the instants are not on whole seconds); 0 when b ≤ a. */
export function businessSecondsBetween(a: Date, b: Date, cal: BusinessHours | null): number {
  return businessMsBetween(a, b, cal) / 1000;
}
