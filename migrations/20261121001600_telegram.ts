import type { Knex } from 'knex';

// Running the bots (SPEC §3): tokens on accounts, the inbound update inbox, the intake form
// and each private chat's conversation state, the send queue's pacing, and what a ticket's
// forum topic looks like right now (so cosmetic edits are skipped when nothing changed).
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    -- The token is needed to call Telegram, so it cannot be hashed; the API never returns it
    -- and it is never logged. A removed bot keeps its row (tickets and messages point at it).
    ALTER TABLE accounts
      ADD COLUMN bot_token   text,
      ADD COLUMN deleted_at  timestamptz(3);
    DROP INDEX accounts_one_default;
    CREATE UNIQUE INDEX accounts_one_default ON accounts (workspace_id) WHERE is_default AND deleted_at IS NULL;
    -- One bot can only be polled (or have its webhook) in one place.
    CREATE UNIQUE INDEX accounts_bot_user ON accounts (bot_user_id) WHERE bot_user_id IS NOT NULL AND deleted_at IS NULL;

    -- Every update received, polled or pushed, before it is handled: the primary key drops a
    -- repeated update_id; chat_id is the ordering lane (0 for updates without a chat).
    -- Handling happens in the transaction that marks the row processed, so it happens once.
    CREATE TABLE telegram_updates (
      account_id       text NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
      update_id        bigint NOT NULL,
      chat_id          bigint NOT NULL,
      payload          jsonb NOT NULL,
      received_at      timestamptz(3) NOT NULL,
      next_attempt_at  timestamptz(3) NOT NULL,
      attempts         integer NOT NULL DEFAULT 0,
      last_error       text,
      processed_at     timestamptz(3),
      PRIMARY KEY (account_id, update_id)
    );
    CREATE INDEX telegram_updates_pending ON telegram_updates (account_id, chat_id, update_id) WHERE processed_at IS NULL;
    CREATE INDEX telegram_updates_processed ON telegram_updates (processed_at) WHERE processed_at IS NOT NULL;

    -- The workspace's intake form (absent = the built-in default).
    CREATE TABLE intake_forms (
      workspace_id  text PRIMARY KEY REFERENCES workspaces (id) ON DELETE CASCADE,
      fields        jsonb NOT NULL,
      updated_at    timestamptz(3) NOT NULL
    );

    -- A customer's private chat with one bot: the form in progress (a snapshot of the form as
    -- it was when it started, the step, the answers so far) and the ticket they last chose.
    CREATE TABLE telegram_chats (
      account_id            text NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
      chat_id               bigint NOT NULL,
      workspace_id          text NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
      form                  jsonb,
      form_step             integer,
      form_answers          jsonb,
      form_started_at       timestamptz(3),
      chosen_ticket_id      text REFERENCES tickets (id) ON DELETE SET NULL,
      chosen_until          timestamptz(3),
      -- Messages written while they were choosing which open ticket they mean.
      pending_messages      jsonb NOT NULL DEFAULT '[]',
      updated_at            timestamptz(3) NOT NULL,
      PRIMARY KEY (account_id, chat_id)
    );
    CREATE INDEX telegram_chats_ticket ON telegram_chats (chosen_ticket_id) WHERE chosen_ticket_id IS NOT NULL;

    -- The topic as Telegram shows it, and the customer's rating.
    ALTER TABLE tickets
      ADD COLUMN topic_name               text,
      ADD COLUMN topic_closed             boolean NOT NULL DEFAULT false,
      ADD COLUMN topic_card_message_id    bigint,
      ADD COLUMN topic_card_text          text,
      ADD COLUMN topic_card_pinned        boolean NOT NULL DEFAULT false,
      ADD COLUMN csat_rating              smallint CHECK (csat_rating BETWEEN 1 AND 5),
      ADD COLUMN csat_at                  timestamptz(3);

    -- Send queue: priority 0 = messages and topic life (kept in order per chat),
    -- 1 = cosmetic (rename, card edit): rendered from the ticket at send time, so one queued
    -- row per ticket and kind is enough however often the ticket changes.
    -- failures counts errors that may clear up (5xx, network); a 429 is a wait, not a failure.
    ALTER TABLE telegram_sends ADD COLUMN priority smallint NOT NULL DEFAULT 0, ADD COLUMN failures integer NOT NULL DEFAULT 0;
    CREATE INDEX telegram_sends_due ON telegram_sends (priority, id) WHERE status = 'queued';
    CREATE INDEX telegram_sends_lane ON telegram_sends (account_id, chat_id, id) WHERE status IN ('queued', 'sending') AND priority = 0;
    CREATE UNIQUE INDEX telegram_sends_coalesced ON telegram_sends (ticket_id, op) WHERE status = 'queued' AND priority = 1;
    CREATE INDEX telegram_sends_done ON telegram_sends (done_at) WHERE done_at IS NOT NULL;

    -- Pacing shared by every replica: the times of the last sends per key (a chat, a bot),
    -- at most as many as the key's limit allows in its window, and a pause after a 429.
    CREATE TABLE telegram_rate_windows (
      key            text PRIMARY KEY,
      sent_at        timestamptz(3)[] NOT NULL DEFAULT '{}',
      blocked_until  timestamptz(3)
    );

    -- Keeping the topic current: whatever changes a ticket (API, commands, jobs), its topic's
    -- name and card are re-rendered from the row by the send queue; closing closes the topic;
    -- resolving tells the customer. A trigger, so no code path can forget it. Sandbox
    -- workspaces have no topics and never reach Telegram.
    CREATE FUNCTION telegram_ticket_changed() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
      chat bigint;
    BEGIN
      IF NEW.account_id IS NULL OR (SELECT mode FROM workspaces WHERE id = NEW.workspace_id) <> 'live' THEN
        RETURN NULL;
      END IF;
      IF NEW.topic_thread_id IS NOT NULL THEN
        IF NEW.status IS DISTINCT FROM OLD.status OR NEW.subject IS DISTINCT FROM OLD.subject THEN
          INSERT INTO telegram_sends (workspace_id, account_id, chat_id, op, ticket_id, priority, next_attempt_at, created_at)
          VALUES (NEW.workspace_id, NEW.account_id, NEW.topic_chat_id, 'rename_topic', NEW.id, 1, now(), now())
          ON CONFLICT (ticket_id, op) WHERE status = 'queued' AND priority = 1 DO NOTHING;
        END IF;
        IF (NEW.status, NEW.subject, NEW.priority, NEW.category, NEW.tags, NEW.assignee_id, NEW.team_id, NEW.first_response_due_at, NEW.resolution_due_at)
           IS DISTINCT FROM (OLD.status, OLD.subject, OLD.priority, OLD.category, OLD.tags, OLD.assignee_id, OLD.team_id, OLD.first_response_due_at, OLD.resolution_due_at) THEN
          INSERT INTO telegram_sends (workspace_id, account_id, chat_id, op, ticket_id, priority, next_attempt_at, created_at)
          VALUES (NEW.workspace_id, NEW.account_id, NEW.topic_chat_id, 'edit_card', NEW.id, 1, now(), now())
          ON CONFLICT (ticket_id, op) WHERE status = 'queued' AND priority = 1 DO NOTHING;
        END IF;
        IF NEW.status = 'closed' AND OLD.status <> 'closed' THEN
          INSERT INTO telegram_sends (workspace_id, account_id, chat_id, op, ticket_id, next_attempt_at, created_at)
          VALUES (NEW.workspace_id, NEW.account_id, NEW.topic_chat_id, 'close_topic', NEW.id, now(), now());
        END IF;
      END IF;
      IF NEW.status = 'resolved' AND OLD.status <> 'resolved' THEN
        SELECT cc.chat_id INTO chat FROM contact_chats cc WHERE cc.contact_id = NEW.contact_id AND cc.account_id = NEW.account_id;
        IF chat IS NOT NULL THEN
          INSERT INTO telegram_sends (workspace_id, account_id, chat_id, op, ticket_id, next_attempt_at, created_at)
          VALUES (NEW.workspace_id, NEW.account_id, chat, 'resolution_notice', NEW.id, now(), now());
        END IF;
      END IF;
      RETURN NULL;
    END $$;
    CREATE TRIGGER tickets_telegram AFTER UPDATE ON tickets FOR EACH ROW EXECUTE FUNCTION telegram_ticket_changed();
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    DROP TRIGGER tickets_telegram ON tickets;
    DROP FUNCTION telegram_ticket_changed();
    DROP TABLE telegram_rate_windows;
    DROP INDEX telegram_sends_due; DROP INDEX telegram_sends_lane; DROP INDEX telegram_sends_coalesced; DROP INDEX telegram_sends_done;
    ALTER TABLE telegram_sends DROP COLUMN priority, DROP COLUMN failures;
    ALTER TABLE tickets DROP COLUMN topic_name, DROP COLUMN topic_closed, DROP COLUMN topic_card_message_id,
      DROP COLUMN topic_card_text, DROP COLUMN topic_card_pinned, DROP COLUMN csat_rating, DROP COLUMN csat_at;
    DROP TABLE telegram_chats;
    DROP TABLE intake_forms;
    DROP TABLE telegram_updates;
    DROP INDEX accounts_bot_user;
    DROP INDEX accounts_one_default;
    CREATE UNIQUE INDEX accounts_one_default ON accounts (workspace_id) WHERE is_default;
    ALTER TABLE accounts DROP COLUMN bot_token, DROP COLUMN deleted_at;
  `);
}
