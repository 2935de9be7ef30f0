import assert from 'node:assert/strict';
import { MESSAGE_MAX, transferNoteText, type TransferSide } from '../../src/topics/topic-card.js';

const ann = { id: 'ag_1', name: 'Ann Lee', username: 'ann' };
const bob = { id: 'ag_2', name: 'Bob Stone', username: null };
const billing = { id: 'team_1', name: 'Billing' };
const sales = { id: 'team_2', name: 'Sales' };
const side = (assignee: TransferSide['assignee'], team: TransferSide['team'] = null): TransferSide => ({ assignee, team });

describe('transferNoteText (the transfer note in a ticket topic)', () => {
  it('names agents by @username, else by name, and nobody for none; the note follows a colon', () => {
    assert.equal(transferNoteText(side(ann), side(bob), 'over to you'), '🔀 Reassigned from @ann to Bob Stone: over to you');
    assert.equal(transferNoteText(side(null), side(ann), null), '🔀 Reassigned from nobody to @ann');
    assert.equal(transferNoteText(side(ann), side(null), '  '), '🔀 Reassigned from @ann to nobody');
  });

  it('team moves: to, from → to, and out of a team; with a reassignment on the same line', () => {
    assert.equal(transferNoteText(side(null), side(null, billing), null), '🔀 Moved to team Billing');
    assert.equal(transferNoteText(side(ann, sales), side(ann, billing), null), '🔀 Moved from team Sales to team Billing');
    assert.equal(transferNoteText(side(ann, billing), side(null), 'n'), '🔀 Removed from team Billing · Reassigned from @ann to nobody: n');
  });

  it('nothing when the burst ended where it started; compares ids, not names', () => {
    assert.equal(transferNoteText(side(ann, billing), side(ann, billing), 'note'), null);
    assert.notEqual(transferNoteText(side(bob), side({ ...bob, id: 'ag_3' }), null), null);
  });

  it('fits a Telegram message', () => {
    const text = transferNoteText(side(ann), side(bob), 'x'.repeat(5000))!;
    assert.equal(Array.from(text).length, MESSAGE_MAX);
    assert.ok(text.endsWith('…'));
  });
});
