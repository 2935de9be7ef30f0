import type { Knex } from 'knex';

// Tickets. Numbers are per workspace, allocated from ticket_numbers inside the creating
// transaction: the row lock serialises allocation and a rollback returns the number, so
// they have neither gaps nor duplicates.
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    -- One row per workspace, updated by every ticket creation. Its own table (not a column of
    -- workspaces) so the row every foreign key and every authentication reads is not the one
    -- rewritten hundreds of times a second; a low fillfactor leaves room for HOT updates, and
    -- autovacuum visits it often, so the row's old versions never pile up.
    CREATE TABLE ticket_numbers (
      workspace_id  text PRIMARY KEY REFERENCES workspaces (id) ON DELETE CASCADE,
      last_number   integer NOT NULL
    ) WITH (fillfactor = 10, autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 500);

    CREATE TABLE tickets (
      id                     text PRIMARY KEY,
      workspace_id           text NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
      number                 integer NOT NULL CHECK (number > 0),
      subject                text NOT NULL,
      description            text NOT NULL DEFAULT '',
      status                 text NOT NULL DEFAULT 'open'
                             CHECK (status IN ('open', 'in_progress', 'waiting_on_customer', 'resolved', 'closed')),
      priority               text NOT NULL DEFAULT 'normal' CHECK (priority IN ('low', 'normal', 'high', 'urgent')),
      -- Sorting by priority means urgent first: a number sorts, the word does not.
      priority_rank          smallint GENERATED ALWAYS AS (
                               CASE priority WHEN 'urgent' THEN 4 WHEN 'high' THEN 3 WHEN 'normal' THEN 2 ELSE 1 END
                             ) STORED,
      category               text,
      tags                   text[] NOT NULL DEFAULT '{}',
      custom_fields          jsonb NOT NULL DEFAULT '{}',
      contact_id             text NOT NULL,
      team_id                text,
      assignee_id            text,
      account_id             text,
      topic_chat_id          bigint,
      topic_thread_id        bigint,
      sla_policy_id          text,
      first_response_due_at  timestamptz(3),
      resolution_due_at      timestamptz(3),
      -- The next SLA deadline, 'infinity' when no clock runs: the sla_due sort and the SLA
      -- sweep read one indexed column (a sentinel rather than NULL keeps keyset cursors simple).
      sla_due_at             timestamptz(3) NOT NULL DEFAULT 'infinity',
      first_response_at      timestamptz(3),
      resolved_at            timestamptz(3),
      closed_at              timestamptz(3),
      reopened_count         integer NOT NULL DEFAULT 0,
      archived_at            timestamptz(3),
      created_at             timestamptz(3) NOT NULL DEFAULT now(),
      updated_at             timestamptz(3) NOT NULL DEFAULT now(),
      -- 'simple': customers write in every language; no stemming beats the wrong stemming.
      search                 tsvector GENERATED ALWAYS AS (to_tsvector('simple', subject || ' ' || description)) STORED,
      UNIQUE (workspace_id, number),
      -- Composite keys: a ticket can only point at a contact, team, agent or bot of its own workspace.
      FOREIGN KEY (workspace_id, contact_id) REFERENCES contacts (workspace_id, id),
      FOREIGN KEY (workspace_id, team_id) REFERENCES teams (workspace_id, id),
      FOREIGN KEY (workspace_id, assignee_id) REFERENCES agents (workspace_id, id),
      FOREIGN KEY (workspace_id, account_id) REFERENCES accounts (workspace_id, id)
    );
    -- The default list (newest first) and the status filter, without archived tickets.
    CREATE INDEX tickets_list ON tickets (workspace_id, created_at DESC, id DESC) WHERE archived_at IS NULL;
    CREATE INDEX tickets_by_status ON tickets (workspace_id, status, created_at DESC, id DESC) WHERE archived_at IS NULL;
    CREATE INDEX tickets_archived ON tickets (workspace_id, created_at DESC, id DESC) WHERE archived_at IS NOT NULL;
    CREATE INDEX tickets_updated ON tickets (workspace_id, updated_at);
    -- Filters that are also foreign keys; the assignee one also counts an agent's open load.
    CREATE INDEX tickets_contact ON tickets (workspace_id, contact_id, created_at DESC);
    CREATE INDEX tickets_assignee ON tickets (workspace_id, assignee_id, status);
    CREATE INDEX tickets_team ON tickets (workspace_id, team_id, status, priority_rank DESC, created_at);
    CREATE INDEX tickets_account ON tickets (account_id) WHERE account_id IS NOT NULL;
    CREATE INDEX tickets_tags ON tickets USING gin (tags);
    CREATE INDEX tickets_search ON tickets USING gin (search);
    -- Jobs: the SLA sweep (tickets whose clock runs) and auto-close (resolved tickets by age).
    CREATE INDEX tickets_sla_due ON tickets (sla_due_at) WHERE sla_due_at < 'infinity' AND status IN ('open', 'in_progress', 'waiting_on_customer');
    CREATE INDEX tickets_resolved ON tickets (resolved_at) WHERE status = 'resolved';
    -- A forum topic belongs to one ticket.
    CREATE UNIQUE INDEX tickets_topic ON tickets (topic_chat_id, topic_thread_id) WHERE topic_thread_id IS NOT NULL;
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP TABLE tickets; DROP TABLE ticket_numbers');
}
