import type { Knex } from 'knex';

// SPEC §4.6: events that change a resource keep the changed fields' values from before the
// change (`previous`), and some say more than the resource (`details`). Both go next to
// `data` in the webhook payload; `previous` also into the timeline. Null when the event has none.
// Nullable without a default: adding them rewrites nothing.
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    ALTER TABLE events
      ADD COLUMN previous  jsonb,
      ADD COLUMN details   jsonb;
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    ALTER TABLE events
      DROP COLUMN previous,
      DROP COLUMN details;
  `);
}
