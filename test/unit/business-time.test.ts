import assert from 'node:assert/strict';
import fc from 'fast-check';
import { DateTime, Settings } from 'luxon';
import {
  addBusinessMinutes, businessMsBetween, businessSecondsBetween, isWorkingTime, nextWorkingStart, validateBusinessHours,
  type BusinessHours, type WeeklyInterval,
} from '../../src/sla/business-time.js';

type Day = WeeklyInterval['day'];
const at = (iso: string) => new Date(iso);
const iso = (d: Date) => d.toISOString();
const H = 3600;

/** The same intervals on each of `days`. */
function cal(timezone: string, days: Day[], intervals: [string, string][], holidays: string[] = []): BusinessHours {
  return { timezone, weekly: days.flatMap((day) => intervals.map(([start, end]) => ({ day, start, end }))), holidays };
}
const MON_FRI: Day[] = [1, 2, 3, 4, 5];
const ALL_DAYS: Day[] = [1, 2, 3, 4, 5, 6, 7];
const office = (tz: string, holidays: string[] = []) => cal(tz, MON_FRI, [['09:00', '17:00']], holidays);
const allDay = (tz: string) => cal(tz, ALL_DAYS, [['00:00', '24:00']]);
const sundayOnly = (tz: string, start: string, end: string) => cal(tz, [7], [[start, end]]);

describe('business time (pure)', () => {
  describe('examples (Europe/Berlin, Mon–Fri 09:00–17:00)', () => {
    const berlin = office('Europe/Berlin');

    it('a ticket at Friday 16:30 with 60 minutes is due Monday 09:30', () => {
      assert.equal(iso(addBusinessMinutes(at('2026-03-06T16:30:00+01:00'), 60, berlin)), iso(at('2026-03-09T09:30:00+01:00')));
    });

    it('a Saturday start counts from Monday 09:00; 0 minutes leaves the start as it is', () => {
      const sat = at('2026-03-07T11:00:00+01:00');
      assert.equal(iso(addBusinessMinutes(sat, 90, berlin)), iso(at('2026-03-09T10:30:00+01:00')));
      assert.equal(iso(addBusinessMinutes(sat, 0, berlin)), iso(sat));
      assert.equal(iso(nextWorkingStart(sat, berlin)), iso(at('2026-03-09T09:00:00+01:00')));
      assert.equal(isWorkingTime(sat, berlin), false);
    });

    it('skips the lunch gap between two intervals; using up an interval exactly ends at its end', () => {
      const split = cal('Europe/Berlin', MON_FRI, [['09:00', '12:00'], ['13:00', '17:00']]);
      assert.equal(iso(addBusinessMinutes(at('2026-03-09T11:30:00+01:00'), 60, split)), iso(at('2026-03-09T13:30:00+01:00')));
      assert.equal(iso(addBusinessMinutes(at('2026-03-09T11:00:00+01:00'), 60, split)), iso(at('2026-03-09T12:00:00+01:00')));
      assert.equal(businessSecondsBetween(at('2026-03-09T08:00:00+01:00'), at('2026-03-09T18:00:00+01:00'), split), 7 * H);
    });

    it('a holiday on the Friday before a weekend rolls the due time to Monday', () => {
      const thu = at('2026-05-14T16:00:00+02:00');
      assert.equal(iso(addBusinessMinutes(thu, 120, berlin)), iso(at('2026-05-15T10:00:00+02:00')));
      const withHoliday = office('Europe/Berlin', ['2026-05-15', '2026-05-15']); // a duplicate is harmless
      assert.equal(iso(addBusinessMinutes(thu, 120, withHoliday)), iso(at('2026-05-18T10:00:00+02:00')));
      assert.equal(isWorkingTime(at('2026-05-15T10:00:00+02:00'), withHoliday), false);
    });

    it('between over a weekend counts working time only; b ≤ a is 0', () => {
      const fri = at('2026-03-06T16:00:00+01:00');
      const mon = at('2026-03-09T10:00:00+01:00');
      assert.equal(businessSecondsBetween(fri, mon, berlin), 2 * H);
      assert.equal(businessSecondsBetween(mon, fri, berlin), 0);
      assert.equal(businessSecondsBetween(fri, fri, berlin), 0);
    });

    it('intervals are half-open: the start is working time, the end is not', () => {
      assert.equal(isWorkingTime(at('2026-03-09T09:00:00+01:00'), berlin), true);
      assert.equal(isWorkingTime(at('2026-03-09T16:59:59.999+01:00'), berlin), true);
      assert.equal(isWorkingTime(at('2026-03-09T17:00:00+01:00'), berlin), false);
    });

    it('a long target crosses weeks and holidays (4 weeks of 40 h, one holiday Monday)', () => {
      const start = at('2026-11-30T09:00:00+01:00'); // a Monday
      const xmas = office('Europe/Berlin', ['2026-12-07']);
      assert.equal(iso(addBusinessMinutes(start, 4 * 40 * 60, berlin)), iso(at('2026-12-25T17:00:00+01:00')));
      assert.equal(iso(addBusinessMinutes(start, 4 * 40 * 60, xmas)), iso(at('2026-12-28T17:00:00+01:00')));
      assert.equal(businessSecondsBetween(start, at('2026-12-28T17:00:00+01:00'), xmas), 160 * H);
    });

    it('the null calendar is wall time', () => {
      const s = at('2026-03-07T11:00:00Z');
      assert.equal(iso(addBusinessMinutes(s, 90, null)), '2026-03-07T12:30:00.000Z');
      assert.equal(iso(addBusinessMinutes(s, 1.5, null)), '2026-03-07T11:01:30.000Z');
      assert.equal(businessSecondsBetween(s, at('2026-03-09T11:00:00Z'), null), 48 * H);
      assert.equal(isWorkingTime(s, null), true);
    });

    it('rejects negative or non-finite minutes and an invalid calendar with a clear error', () => {
      assert.throws(() => addBusinessMinutes(at('2026-03-06T10:00:00Z'), -1, berlin), RangeError);
      assert.throws(() => addBusinessMinutes(at('2026-03-06T10:00:00Z'), NaN, null), RangeError);
      assert.throws(() => addBusinessMinutes(at('2026-03-06T10:00:00Z'), 5, { timezone: 'Nowhere/City', weekly: [], holidays: [] }), /invalid business hours: business_hours.timezone/);
    });

    it('throws instead of spinning when no working time comes for 3 years', () => {
      const mondays = Array.from({ length: 3 * 53 + 2 }, (_, i) => DateTime.fromISO('2026-03-09').plus({ weeks: i }).toISODate()!);
      const never = cal('Europe/Berlin', [1], [['09:00', '10:00']], mondays);
      assert.throws(() => addBusinessMinutes(at('2026-03-06T10:00:00Z'), 5, never), /no working time within/);
      assert.throws(() => nextWorkingStart(at('2026-03-06T10:00:00Z'), never), /no working time within/);
    });
  });

  describe('DST and zones', () => {
    it('Europe/Berlin: the local day is 23 h in March and 25 h in October (24/7 calendar)', () => {
      const c = allDay('Europe/Berlin');
      assert.equal(businessSecondsBetween(at('2026-03-29T00:00:00+01:00'), at('2026-03-30T00:00:00+02:00'), c), 23 * H);
      assert.equal(businessSecondsBetween(at('2026-10-25T00:00:00+02:00'), at('2026-10-26T00:00:00+01:00'), c), 25 * H);
      assert.equal(iso(addBusinessMinutes(at('2026-03-29T00:00:00+01:00'), 24 * 60, c)), iso(at('2026-03-30T01:00:00+02:00')));
    });

    it('Europe/Berlin: 01:00–04:00 on the switch night is 2 real hours in spring, 4 in autumn', () => {
      const c = sundayOnly('Europe/Berlin', '01:00', '04:00');
      assert.equal(businessSecondsBetween(at('2026-03-28T12:00:00Z'), at('2026-03-30T00:00:00Z'), c), 2 * H);
      assert.equal(businessSecondsBetween(at('2026-10-24T12:00:00Z'), at('2026-10-26T00:00:00Z'), c), 4 * H);
      assert.equal(iso(addBusinessMinutes(at('2026-03-29T00:00:00+01:00'), 90, c)), iso(at('2026-03-29T03:30:00+02:00')));
      assert.equal(iso(addBusinessMinutes(at('2026-10-25T00:00:00+02:00'), 210, c)), iso(at('2026-10-25T03:30:00+01:00')));
    });

    it('Europe/Berlin: a wall time in the spring gap means the instant the clock jumps', () => {
      const day = [at('2026-03-28T12:00:00Z'), at('2026-03-30T00:00:00Z')] as const;
      assert.equal(businessSecondsBetween(...day, sundayOnly('Europe/Berlin', '02:00', '02:30')), 0, 'the interval does not exist that night');
      assert.equal(businessSecondsBetween(...day, sundayOnly('Europe/Berlin', '02:30', '03:30')), 0.5 * H, 'from 03:00 to 03:30 CEST');
      assert.equal(businessSecondsBetween(...day, sundayOnly('Europe/Berlin', '00:00', '02:30')), 2 * H, 'from 00:00 CET to the jump');
    });

    it('Europe/Berlin: an ambiguous wall time is its first occurrence, whatever the season the server runs in', () => {
      const c = sundayOnly('Europe/Berlin', '00:00', '02:30');
      const day = [at('2026-10-24T12:00:00Z'), at('2026-10-26T00:00:00Z')] as const;
      const saved = Settings.now;
      try {
        for (const now of ['2026-07-01T00:00:00Z', '2026-01-15T00:00:00Z']) {
          Settings.now = () => Date.parse(now); // Luxon's fromObject would answer differently in these two
          assert.equal(businessSecondsBetween(...day, c), 2.5 * H, now);
          assert.equal(iso(addBusinessMinutes(at('2026-10-24T22:00:00Z'), 150, c)), iso(at('2026-10-25T02:30:00+02:00')), now);
        }
      } finally {
        Settings.now = saved;
      }
    });

    it('Europe/Berlin: office hours across the spring weekend are still 8 real hours a day', () => {
      const c = office('Europe/Berlin');
      assert.equal(iso(addBusinessMinutes(at('2026-03-27T16:30:00+01:00'), 60, c)), iso(at('2026-03-30T09:30:00+02:00')));
      assert.equal(businessSecondsBetween(at('2026-03-27T00:00:00Z'), at('2026-03-31T00:00:00Z'), c), 16 * H);
    });

    it('America/New_York: 23 h on the second Sunday of March, 25 h on the first Sunday of November', () => {
      const c = allDay('America/New_York');
      assert.equal(businessSecondsBetween(at('2026-03-08T00:00:00-05:00'), at('2026-03-09T00:00:00-04:00'), c), 23 * H);
      assert.equal(businessSecondsBetween(at('2026-11-01T00:00:00-04:00'), at('2026-11-02T00:00:00-05:00'), c), 25 * H);
      assert.equal(iso(addBusinessMinutes(at('2026-03-06T16:30:00-05:00'), 60, office('America/New_York'))), iso(at('2026-03-09T09:30:00-04:00')));
      assert.equal(iso(addBusinessMinutes(at('2026-10-30T16:30:00-04:00'), 60, office('America/New_York'))), iso(at('2026-11-02T09:30:00-05:00')));
      // Friday 21:00 in New York is Saturday in UTC: the local day decides.
      const evenings = cal('America/New_York', MON_FRI, [['18:00', '23:00']]);
      assert.equal(iso(addBusinessMinutes(at('2026-03-06T21:00:00-05:00'), 60, evenings)), iso(at('2026-03-06T22:00:00-05:00')));
      assert.equal(isWorkingTime(at('2026-03-06T21:00:00-05:00'), evenings), true);
    });

    it('Australia/Lord_Howe: the 30-minute shift makes 24.5 h in April and 23.5 h in October', () => {
      const c = allDay('Australia/Lord_Howe');
      assert.equal(businessSecondsBetween(at('2026-04-05T00:00:00+11:00'), at('2026-04-06T00:00:00+10:30'), c), 24.5 * H);
      assert.equal(businessSecondsBetween(at('2026-10-04T00:00:00+10:30'), at('2026-10-05T00:00:00+11:00'), c), 23.5 * H);
      const night = sundayOnly('Australia/Lord_Howe', '01:00', '03:00');
      assert.equal(businessSecondsBetween(at('2026-04-04T00:00:00Z'), at('2026-04-06T00:00:00Z'), night), 2.5 * H);
      assert.equal(businessSecondsBetween(at('2026-10-03T00:00:00Z'), at('2026-10-05T00:00:00Z'), night), 1.5 * H);
    });

    it('zones without DST: Asia/Kolkata (+05:30) and Asia/Tokyo', () => {
      assert.equal(iso(addBusinessMinutes(at('2026-03-06T16:30:00+05:30'), 60, office('Asia/Kolkata'))), iso(at('2026-03-09T09:30:00+05:30')));
      assert.equal(iso(addBusinessMinutes(at('2026-03-06T16:30:00+09:00'), 60, office('Asia/Tokyo'))), iso(at('2026-03-09T09:30:00+09:00')));
      // Friday 23:30 UTC is already Saturday in Tokyo: the local day decides, not the UTC one.
      assert.equal(isWorkingTime(at('2026-03-06T23:30:00Z'), office('Asia/Tokyo')), false);
      assert.equal(businessSecondsBetween(at('2026-03-29T00:00:00+05:30'), at('2026-03-30T00:00:00+05:30'), allDay('Asia/Kolkata')), 24 * H);
    });
  });

  describe('validateBusinessHours', () => {
    const good = (): BusinessHours => cal('Europe/Berlin', MON_FRI, [['09:00', '12:00'], ['12:00', '24:00']], ['2026-12-25', '2026-12-25']);
    const fields = (bh: BusinessHours) => validateBusinessHours(bh).map((e) => e.field);
    const only = (bh: BusinessHours) => {
      const errors = validateBusinessHours(bh);
      assert.equal(errors.length, 1, JSON.stringify(errors));
      return errors[0];
    };

    it('accepts a good calendar (touching intervals, 24:00 as an end, duplicate holidays)', () => {
      assert.deepEqual(validateBusinessHours(good()), []);
    });

    it('names an unknown time zone', () => {
      const e = only({ ...good(), timezone: 'Mars/Olympus_Mons' });
      assert.equal(e.field, 'business_hours.timezone');
      assert.equal(e.received, 'Mars/Olympus_Mons');
      assert.match(e.error, /time zone/);
    });

    it('names a bad HH:MM, and 24:00 as a start', () => {
      const bh = good();
      bh.weekly[1] = { day: 1, start: '9:00', end: '12:00' };
      bh.weekly[2] = { day: 2, start: '09:00', end: '25:00' };
      bh.weekly[3] = { day: 2, start: '24:00', end: '24:00' };
      const errors = validateBusinessHours(bh);
      assert.deepEqual(errors.map((e) => e.field), ['business_hours.weekly[1].start', 'business_hours.weekly[2].end', 'business_hours.weekly[3].start']);
      assert.match(errors[2].error, /24:00 is allowed only as an end/);
    });

    it('says that an interval may not cross midnight (end ≤ start)', () => {
      for (const [start, end] of [['22:00', '06:00'], ['09:00', '09:00'], ['09:00', '00:00']]) {
        const e = only(cal('Europe/Berlin', [3], [['08:00', '09:00'], [start, end]]));
        assert.equal(e.field, 'business_hours.weekly[1].end');
        assert.match(e.error, /may not cross midnight.*split it at 24:00/);
      }
    });

    it('names both intervals of an overlap on the same day; other days do not clash', () => {
      const bh: BusinessHours = {
        timezone: 'Europe/Berlin', holidays: [],
        weekly: [{ day: 1, start: '09:00', end: '12:00' }, { day: 2, start: '11:00', end: '13:00' }, { day: 1, start: '11:00', end: '13:00' }],
      };
      const e = only(bh);
      assert.equal(e.field, 'business_hours.weekly[2]');
      assert.match(e.error, /overlaps weekly\[0\] \(09:00–12:00\) on Monday/);
      bh.weekly.push({ day: 2, start: '11:00', end: '13:00' });
      assert.deepEqual(fields(bh), ['business_hours.weekly[2]', 'business_hours.weekly[3]']);
    });

    it('wants at least one working interval and a day 1–7', () => {
      assert.deepEqual(fields({ ...good(), weekly: [] }), ['business_hours.weekly']);
      assert.deepEqual(fields({ ...good(), weekly: [{ day: 0 as Day, start: '09:00', end: '10:00' }] }), ['business_hours.weekly[0].day']);
    });

    it('names bad holiday dates: not YYYY-MM-DD, or no such date', () => {
      const errors = validateBusinessHours({ ...good(), holidays: ['2026-12-24', '2026-02-30', '25.12.2026', '2026-12-25T00:00', '2027-02-29'] });
      assert.deepEqual(errors.map((e) => [e.field, e.received]), [
        ['business_hours.holidays[1]', '2026-02-30'], ['business_hours.holidays[2]', '25.12.2026'],
        ['business_hours.holidays[3]', '2026-12-25T00:00'], ['business_hours.holidays[4]', '2027-02-29'],
      ]);
      assert.match(errors[0].error, /no such date/);
      assert.match(errors[1].error, /YYYY-MM-DD/);
    });
  });

  describe('properties', () => {
    const ZONES = ['Europe/Berlin', 'America/New_York', 'Australia/Lord_Howe', 'Asia/Tokyo', 'Asia/Kolkata', 'America/Santiago', 'America/Havana', 'UTC'];
    // Instants near 2026–2027 offset changes, so random starts land on switch nights often.
    const SWITCHES = ['2026-03-29T01:00Z', '2026-10-25T01:00Z', '2027-03-28T01:00Z', '2026-03-08T07:00Z', '2026-11-01T06:00Z',
      '2026-04-04T15:00Z', '2026-10-03T15:30Z', '2026-04-05T03:00Z', '2026-09-06T04:00Z', '2026-03-08T05:00Z', '2026-11-01T05:00Z'].map(Date.parse);
    const FROM = Date.parse('2026-01-01T00:00:00Z');
    const TO = Date.parse('2028-01-01T00:00:00Z');
    const hhmm = (m: number) => (m === 1440 ? '24:00' : `${String(Math.floor(m / 60)).padStart(2, '0')}:${String(m % 60).padStart(2, '0')}`);

    /** 1–3 non-overlapping intervals: 2k sorted distinct minute marks paired up (5-minute steps hit 02:00/02:30). */
    const arbDay = fc.integer({ min: 1, max: 3 }).chain((k) => fc.uniqueArray(fc.integer({ min: 0, max: 288 }), { minLength: 2 * k, maxLength: 2 * k }))
      .map((marks) => {
        const m = marks.map((x) => x * 5).sort((a, b) => a - b);
        return Array.from({ length: m.length / 2 }, (_, i) => [hhmm(m[2 * i]), hhmm(m[2 * i + 1])] as [string, string]);
      });
    const arbStart = fc.oneof(
      fc.integer({ min: FROM, max: TO }),
      fc.tuple(fc.constantFrom(...SWITCHES), fc.integer({ min: -3 * 86_400_000, max: 3 * 86_400_000 })).map(([s, d]) => s + d),
    ).map((t) => new Date(t));
    /** A calendar and a start; holidays fall within a month of the start (local dates). */
    const arbCase = fc.record({
      timezone: fc.constantFrom(...ZONES),
      days: fc.uniqueArray(fc.integer({ min: 1, max: 7 }), { minLength: 1, maxLength: 7 }),
      intervals: fc.array(arbDay, { minLength: 7, maxLength: 7 }),
      holidayOffsets: fc.array(fc.integer({ min: -1, max: 30 }), { maxLength: 3 }),
      start: arbStart,
    }).map(({ timezone, days, intervals, holidayOffsets, start }) => {
      const local = DateTime.fromJSDate(start, { zone: timezone });
      const bh: BusinessHours = {
        timezone,
        weekly: days.flatMap((day, i) => intervals[i].map(([s, e]) => ({ day: day as Day, start: s, end: e }))),
        holidays: holidayOffsets.map((d) => local.plus({ days: d }).toISODate()!),
      };
      const weeklyMinutes = bh.weekly.reduce((sum, iv) => sum + minutesOf(iv.end) - minutesOf(iv.start), 0);
      return { bh, start, weeklyMinutes };
    });
    const minutesOf = (s: string) => Number(s.slice(0, 2)) * 60 + Number(s.slice(3));
    /** 0–20,000 minutes, capped at about two years of this calendar's working time to keep runs short. */
    const capped = (m: number, weeklyMinutes: number) => Math.min(m, weeklyMinutes * 104);
    const arbMinutes = fc.integer({ min: 0, max: 20_000 });
    const RUNS = { numRuns: 300 };

    it('generated calendars are valid', () => {
      fc.assert(fc.property(arbCase, ({ bh }) => validateBusinessHours(bh).length === 0), RUNS);
    });

    it('(a) the working time from start to add(start, m) is exactly m minutes', () => {
      fc.assert(fc.property(arbCase, arbMinutes, ({ bh, start, weeklyMinutes }, m0) => {
        const m = capped(m0, weeklyMinutes);
        const due = addBusinessMinutes(start, m, bh);
        assert.equal(businessMsBetween(start, due, bh), m * 60_000);
        assert.equal(businessSecondsBetween(start, due, bh), m * 60);
      }), RUNS);
    });

    it('(b) adding in two steps equals adding once (0 included: add(s, 0) = s even outside working time)', () => {
      fc.assert(fc.property(arbCase, arbMinutes, arbMinutes, ({ bh, start, weeklyMinutes }, a, b) => {
        const m1 = capped(a, weeklyMinutes / 2);
        const m2 = capped(b, weeklyMinutes / 2);
        assert.equal(iso(addBusinessMinutes(addBusinessMinutes(start, m1, bh), m2, bh)), iso(addBusinessMinutes(start, m1 + m2, bh)));
      }), RUNS);
    });

    it('(c) for m > 0 the due time r ends working time: the millisecond before r is working time, and r is the earliest such instant', () => {
      fc.assert(fc.property(arbCase, fc.integer({ min: 1, max: 20_000 }), ({ bh, start, weeklyMinutes }, m0) => {
        const m = Math.max(1, capped(m0, weeklyMinutes));
        const due = addBusinessMinutes(start, m, bh);
        const justBefore = new Date(due.getTime() - 1);
        assert.ok(due > start);
        assert.equal(isWorkingTime(justBefore, bh), true, `${iso(justBefore)} should be working time`);
        assert.equal(businessMsBetween(start, justBefore, bh), m * 60_000 - 1);
      }), RUNS);
    });

    it('(d) more minutes never give an earlier time', () => {
      fc.assert(fc.property(arbCase, arbMinutes, arbMinutes, ({ bh, start, weeklyMinutes }, a, b) => {
        const [lo, hi] = [capped(Math.min(a, b), weeklyMinutes), capped(Math.max(a, b), weeklyMinutes)];
        return addBusinessMinutes(start, lo, bh) <= addBusinessMinutes(start, hi, bh);
      }), RUNS);
    });

    it('(d) between is additive: between(a, b) + between(b, c) = between(a, c) for a ≤ b ≤ c', () => {
      const span = fc.integer({ min: 0, max: 60 * 86_400_000 });
      fc.assert(fc.property(arbCase, span, span, ({ bh, start }, x, y) => {
        const a = start;
        const b = new Date(a.getTime() + Math.min(x, y));
        const c = new Date(a.getTime() + Math.max(x, y));
        assert.equal(businessMsBetween(a, b, bh) + businessMsBetween(b, c, bh), businessMsBetween(a, c, bh));
      }), RUNS);
    });

    it('isWorkingTime agrees with between over one millisecond, and nextWorkingStart finds the first working instant', () => {
      fc.assert(fc.property(arbCase, ({ bh, start }) => {
        const plus1 = new Date(start.getTime() + 1);
        assert.equal(businessMsBetween(start, plus1, bh), isWorkingTime(start, bh) ? 1 : 0);
        const next = nextWorkingStart(start, bh);
        assert.ok(next >= start);
        assert.equal(isWorkingTime(next, bh), true);
        assert.equal(businessMsBetween(start, next, bh), 0);
      }), RUNS);
    });

    it('(e) the null calendar is plain arithmetic', () => {
      fc.assert(fc.property(arbStart, fc.integer({ min: 0, max: 20_000 }), fc.integer({ min: -1e10, max: 1e10 }), (start, m, d) => {
        assert.equal(addBusinessMinutes(start, m, null).getTime(), start.getTime() + m * 60_000);
        const end = new Date(start.getTime() + d);
        assert.equal(businessSecondsBetween(start, end, null), Math.max(0, d) / 1000);
      }));
    });
  });
});
