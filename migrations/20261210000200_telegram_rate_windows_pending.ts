import type { Knex } from 'knex';

// The places in a window of sends claimed but not yet answered: until its answer comes, such a
// send may reach Telegram as late as now, and a claim counts it so (send-queue.ts).
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`ALTER TABLE telegram_rate_windows ADD COLUMN pending_at timestamptz(3)[] NOT NULL DEFAULT '{}'`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('ALTER TABLE telegram_rate_windows DROP COLUMN pending_at');
}
