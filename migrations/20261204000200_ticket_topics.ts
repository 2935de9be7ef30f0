import type { Knex } from 'knex';

// The topics module's own table: what a ticket's forum topic shows right now (its name, whether
// it is closed, the pinned card and its text), so cosmetic edits are skipped when nothing
// changed. Moved out of `tickets`, which keeps only the topic's address (chat, thread): the API
// presents that as part of the ticket, and the send trigger needs it.
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE TABLE ticket_topics (
      ticket_id         text PRIMARY KEY REFERENCES tickets (id) ON DELETE CASCADE,
      name              text,
      closed            boolean NOT NULL DEFAULT false,
      card_message_id   bigint,
      card_text         text,
      card_pinned       boolean NOT NULL DEFAULT false
    );
    INSERT INTO ticket_topics (ticket_id, name, closed, card_message_id, card_text, card_pinned)
      SELECT id, topic_name, topic_closed, topic_card_message_id, topic_card_text, topic_card_pinned FROM tickets
       WHERE topic_thread_id IS NOT NULL OR topic_name IS NOT NULL OR topic_closed OR topic_card_message_id IS NOT NULL;
    ALTER TABLE tickets DROP COLUMN topic_name, DROP COLUMN topic_closed, DROP COLUMN topic_card_message_id,
      DROP COLUMN topic_card_text, DROP COLUMN topic_card_pinned;
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    ALTER TABLE tickets
      ADD COLUMN topic_name               text,
      ADD COLUMN topic_closed             boolean NOT NULL DEFAULT false,
      ADD COLUMN topic_card_message_id    bigint,
      ADD COLUMN topic_card_text          text,
      ADD COLUMN topic_card_pinned        boolean NOT NULL DEFAULT false;
    UPDATE tickets t SET topic_name = tt.name, topic_closed = tt.closed, topic_card_message_id = tt.card_message_id,
                         topic_card_text = tt.card_text, topic_card_pinned = tt.card_pinned
      FROM ticket_topics tt WHERE tt.ticket_id = t.id;
    DROP TABLE ticket_topics;
  `);
}
