import assert from 'node:assert/strict';
import fc from 'fast-check';
import { eligible, pick, pickBySkills, pickLeastLoaded, pickRoundRobin, requiredSkills, type Candidate } from '../../src/assignment/assignment.js';

const agent = (id: string, o: Partial<Candidate> = {}): Candidate => ({
  id, active: true, skills: [], maxOpenTickets: null, openTickets: 0, lastAssignedAt: null, ...o,
});
const none = { category: null, tags: [] };

describe('assignment choice (pure)', () => {
  describe('eligible', () => {
    it('keeps active agents under capacity; null capacity means no cap', () => {
      const pool = [agent('a'), agent('b', { active: false }), agent('c', { maxOpenTickets: 2, openTickets: 2 }), agent('d', { maxOpenTickets: 2, openTickets: 1 }), agent('e', { openTickets: 500 })];
      assert.deepEqual(eligible(pool).map((a) => a.id), ['a', 'd', 'e']);
    });
  });

  describe('round robin', () => {
    it('takes the next agent after the last pick in id order, wrapping around', () => {
      const pool = [agent('c'), agent('a'), agent('b')];
      assert.equal(pickRoundRobin(pool, null)?.id, 'a');
      assert.equal(pickRoundRobin(pool, 'a')?.id, 'b');
      assert.equal(pickRoundRobin(pool, 'c')?.id, 'a');
      assert.equal(pickRoundRobin(pool, 'bb')?.id, 'c', 'a last pick who left the pool still fixes the place in the order');
      assert.equal(pickRoundRobin([], 'a'), null);
    });

    it('gives every agent the same share over any number of full rounds (property)', () => {
      fc.assert(fc.property(fc.uniqueArray(fc.stringMatching(/^[a-z]{1,6}$/), { minLength: 1, maxLength: 12 }), fc.integer({ min: 1, max: 8 }), (ids, rounds) => {
        const pool = ids.map((id) => agent(id));
        const counts = new Map<string, number>();
        let last: string | null = null;
        for (let i = 0; i < ids.length * rounds; i++) {
          last = pickRoundRobin(pool, last)!.id;
          counts.set(last, (counts.get(last) ?? 0) + 1);
        }
        return ids.every((id) => counts.get(id) === rounds);
      }));
    });
  });

  describe('least loaded', () => {
    it('takes the fewest open tickets; ties go to the longest since a last assignment, never-assigned first', () => {
      const t = (iso: string) => new Date(iso);
      const pool = [
        agent('a', { openTickets: 2 }),
        agent('b', { openTickets: 1, lastAssignedAt: t('2026-12-01T10:00:00Z') }),
        agent('c', { openTickets: 1, lastAssignedAt: t('2026-12-01T09:00:00Z') }),
      ];
      assert.equal(pickLeastLoaded(pool)?.id, 'c');
      assert.equal(pickLeastLoaded([...pool, agent('d', { openTickets: 1 })])?.id, 'd');
    });

    it('never picks someone with more open tickets than another candidate (property)', () => {
      fc.assert(fc.property(fc.array(fc.nat({ max: 20 }), { minLength: 1, maxLength: 15 }), (loads) => {
        const pool = loads.map((n, i) => agent(`ag${String(i).padStart(2, '0')}`, { openTickets: n }));
        return pickLeastLoaded(pool)!.openTickets === Math.min(...loads);
      }));
    });
  });

  describe('skills', () => {
    it('asks for the category and every skill: tag, case-insensitively', () => {
      assert.deepEqual(requiredSkills({ category: 'Billing', tags: ['vip', 'skill:de', 'skill:'] }).sort(), ['billing', 'de']);
    });

    it('keeps agents with every required skill, then the least loaded', () => {
      const pool = [agent('a', { skills: ['billing'], openTickets: 0 }), agent('b', { skills: ['billing', 'de'], openTickets: 3 }), agent('c', { skills: ['Billing', 'DE'], openTickets: 1 })];
      assert.equal(pickBySkills(pool, { category: 'billing', tags: ['skill:de'] })?.id, 'c');
      assert.equal(pickBySkills(pool, { category: 'billing', tags: [] })?.id, 'a');
      assert.equal(pickBySkills(pool, { category: 'shipping', tags: [] }), null);
      assert.equal(pickBySkills(pool, none)?.id, 'a', 'a ticket that asks for nothing: anyone, least loaded');
    });
  });

  describe('pick', () => {
    it('only ever picks an eligible agent, or null when none is (property)', () => {
      const arbAgent = fc.record({
        id: fc.stringMatching(/^ag_[a-z]{1,4}$/), active: fc.boolean(), skills: fc.array(fc.constantFrom('billing', 'de', 'tech')),
        maxOpenTickets: fc.option(fc.integer({ min: 1, max: 5 }), { nil: null }), openTickets: fc.nat({ max: 6 }), lastAssignedAt: fc.constant(null),
      });
      fc.assert(fc.property(fc.uniqueArray(arbAgent, { selector: (a) => a.id, maxLength: 10 }), fc.constantFrom('round_robin', 'least_loaded', 'skills' as const),
        fc.option(fc.constantFrom('billing', 'tech'), { nil: null }), (pool, strategy, category) => {
          const chosen = pick(strategy, pool, { category, tags: [] }, null);
          const ok = eligible(pool);
          if (chosen === null) return strategy === 'skills' || ok.length === 0;
          return ok.some((a) => a.id === chosen.id);
        }));
    });
  });
});
