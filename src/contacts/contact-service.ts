/**
 * Contacts (customers). Invariants: a Telegram user id, username or email belongs to at
 * most one contact of a workspace (unique indexes, matched case-insensitively); every
 * change writes its event (contact.created / contact.updated / contact.tagged) in the
 * caller's transaction.
 */
import type { Db } from '../db/knex.js';
import { eventOutbox, type NewEvent } from '../events/event-outbox.js';
import { SYSTEM, type Actor } from '../kernel/actor.js';
import { AppError, notFound } from '../kernel/errors.js';
import type { PageRequest } from '../kernel/pagination.js';
import { paginate } from '../kernel/pagination.js';
import type { Clock } from '../lib/clock.js';
import { newId } from '../lib/ids.js';
import { changedFields, MAX_CUSTOM_FIELDS, mergeCustomFields, normalizeTags, previousValues } from '../lib/tags.js';
import type { ContactFilters, ContactJson, PatchContactBody } from './contact-schemas.js';
import { toContact, type Contact, type ContactFields } from './contact.js';
import { contactStore } from './contact-store.js';

export const MAX_TAGS = 50;

export function presentContact(c: Contact): ContactJson {
  return {
    id: c.id,
    telegram_user_id: c.telegramUserId,
    username: c.username,
    name: c.name,
    first_name: c.firstName,
    last_name: c.lastName,
    email: c.email,
    phone: c.phone,
    tags: c.tags,
    custom_fields: c.customFields as ContactJson['custom_fields'],
    blocked: c.blocked,
    created_at: c.createdAt.toISOString(),
    updated_at: c.updatedAt.toISOString(),
  };
}

/** What a contact is created or matched with (POST /v1/contacts, inline in POST /v1/tickets, Telegram). */
export interface ContactInput {
  telegram_user_id?: number;
  username?: string;
  email?: string;
  name?: string;
  first_name?: string;
  last_name?: string;
  phone?: string;
  tags?: readonly string[];
  custom_fields?: Record<string, unknown>;
}

const stripAt = (u: string) => u.replace(/^@/, '');
const joinName = (first?: string | null, last?: string | null) => [first, last].filter(Boolean).join(' ') || null;

const UNIQUE_FIELD: Record<string, string> = {
  contacts_telegram_user: 'telegram_user_id',
  contacts_username: 'username',
  contacts_email: 'email',
};

function tooMany(field: string, max: number, count: number): AppError {
  return new AppError('validation_error', `A contact holds at most ${max} ${field}`, { details: [{ field, error: `would hold ${count}; at most ${max}` }] });
}

/**
 * What lets a contact be told apart and reached: every contact has at least one (an empty
 * one, made again by every `{}`, would be neither). Only the first three are matched on.
 */
const IDENTITIES = [['telegram_user_id', 'telegramUserId'], ['username', 'username'], ['email', 'email'], ['phone', 'phone']] as const;
const IDENTITY_FIELDS = IDENTITIES.map(([field]) => field);
const IDENTITY_LIST = 'telegram_user_id, username, email or phone';

function identityRequired(detail: string): AppError {
  return new AppError('validation_error', detail, {
    details: IDENTITY_FIELDS.map((field) => ({ field, error: `is required (or ${IDENTITY_FIELDS.filter((f) => f !== field).join(', ')})` })),
  });
}

/** A unique identity taken by another contact → 409 naming the field. */
function rethrowTaken(err: unknown): never {
  const e = err as { code?: string; constraint?: string };
  const field = e.code === '23505' && e.constraint ? UNIQUE_FIELD[e.constraint] : undefined;
  if (field) throw new AppError('conflict', `Another contact of this workspace already has this ${field}`, { details: [{ field, error: 'belongs to another contact' }] });
  throw err;
}


export function createContactService(deps: { clock: Clock }) {
  const { clock } = deps;

  /** Writes `changes` to `before` and the events they call for; no write when nothing changed. */
  async function applyChanges(db: Db, before: Contact, changes: Partial<ContactFields>, actor: Actor): Promise<Contact> {
    const touched = (Object.keys(changes) as (keyof ContactFields)[]).filter((k) => JSON.stringify(changes[k]) !== JSON.stringify(before[k]));
    if (touched.length === 0) return before;
    const at = clock.now();
    const after = await contactStore.update(db, before.workspaceId, before.id, Object.fromEntries(touched.map((k) => [k, changes[k]])), at).catch(rethrowTaken);
    const events: NewEvent[] = [];
    const fieldChanges = changedFields(before, after, touched.filter((k) => k !== 'tags'));
    if (Object.keys(fieldChanges).length) {
      events.push({ type: 'contact.updated', actor, contactId: after.id, payload: presentContact(after), detail: { changes: fieldChanges }, previous: previousValues(fieldChanges) });
    }
    if (touched.includes('tags')) {
      const added = after.tags.filter((t) => !before.tags.includes(t));
      const removed = before.tags.filter((t) => !after.tags.includes(t));
      events.push({ type: 'contact.tagged', actor, contactId: after.id, payload: presentContact(after), detail: { added, removed } });
    }
    await eventOutbox.record(db, after.workspaceId, at, events);
    return after;
  }

  function mergedFields(current: Contact, input: ContactInput): Partial<ContactFields> {
    const changes: Partial<ContactFields> = {};
    if (input.telegram_user_id !== undefined) changes.telegramUserId = input.telegram_user_id;
    if (input.username !== undefined) changes.username = stripAt(input.username);
    if (input.email !== undefined) changes.email = input.email;
    if (input.phone !== undefined) changes.phone = input.phone;
    if (input.first_name !== undefined) changes.firstName = input.first_name;
    if (input.last_name !== undefined) changes.lastName = input.last_name;
    if (input.name !== undefined) changes.name = input.name;
    else if (!current.name && (input.first_name || input.last_name)) changes.name = joinName(input.first_name ?? current.firstName, input.last_name ?? current.lastName);
    if (input.tags) {
      const tags = normalizeTags([...current.tags, ...input.tags]);
      if (tags.length > MAX_TAGS) throw tooMany('tags', MAX_TAGS, tags.length);
      changes.tags = tags;
    }
    if (input.custom_fields) {
      const { value } = mergeCustomFields(current.customFields, input.custom_fields);
      if (Object.keys(value).length > MAX_CUSTOM_FIELDS) throw tooMany('custom_fields', MAX_CUSTOM_FIELDS, Object.keys(value).length);
      changes.customFields = value;
    }
    return changes;
  }

  const service = {
    /**
     * Finds the contact holding any of the given identities and updates it, or creates one.
     * Identities of two different contacts → 409. Safe under concurrency: the matches are
     * locked, and an insert that loses a race on a unique identity matches again.
     */
    async upsert(db: Db, workspaceId: string, input: ContactInput, actor: Actor): Promise<{ contact: Contact; created: boolean }> {
      const ids = { telegramUserId: input.telegram_user_id, username: input.username && stripAt(input.username), email: input.email };
      const hasIdentity = ids.telegramUserId !== undefined || ids.username !== undefined || ids.email !== undefined;
      if (!hasIdentity && input.phone === undefined) throw identityRequired(`A contact needs at least one identity: ${IDENTITY_LIST}`);
      for (let attempt = 0; attempt < 3; attempt++) {
        if (hasIdentity) {
          const matches = await contactStore.lockMatching(db, workspaceId, ids);
          if (matches.length > 1) {
            throw new AppError('conflict', `These identities belong to different contacts: ${matches.map((m) => m.id).join(', ')}`, {
              fields: { contact_ids: matches.map((m) => m.id) },
            });
          }
          if (matches.length === 1) return { contact: await applyChanges(db, matches[0], mergedFields(matches[0], input), actor), created: false };
        }
        const tags = normalizeTags(input.tags ?? []);
        const { value: customFields } = mergeCustomFields({}, input.custom_fields ?? {});
        const at = clock.now();
        const contact = await contactStore.insertIfAbsent(db, {
          id: newId('ct'), workspaceId, at,
          telegramUserId: ids.telegramUserId ?? null,
          username: ids.username ?? null,
          email: input.email ?? null,
          phone: input.phone ?? null,
          firstName: input.first_name ?? null,
          lastName: input.last_name ?? null,
          name: input.name ?? joinName(input.first_name, input.last_name),
          tags,
          customFields,
          blocked: false,
        });
        if (contact) {
          await eventOutbox.record(db, workspaceId, at, [{ type: 'contact.created', actor, contactId: contact.id, payload: presentContact(contact) }]);
          return { contact, created: true };
        }
        // Another transaction took one of the identities between our match and our insert.
      }
      throw new AppError('conflict', 'The contact is being changed by another request; retry');
    },

    async get(db: Db, workspaceId: string, id: string, opts: { forUpdate?: boolean } = {}): Promise<Contact> {
      const c = await contactStore.findById(db, workspaceId, id, opts);
      if (!c) throw notFound('Contact');
      return c;
    },

    list(db: Db, workspaceId: string, query: PageRequest & ContactFilters) {
      return paginate(contactStore.filtered(db, workspaceId, query), [['created_at', 'desc'], ['id', 'desc']], query, toContact);
    },

    async update(db: Db, workspaceId: string, id: string, body: PatchContactBody, actor: Actor): Promise<Contact> {
      const current = await service.get(db, workspaceId, id, { forUpdate: true });
      const changes: Partial<ContactFields> = {};
      if (body.telegram_user_id !== undefined) changes.telegramUserId = body.telegram_user_id;
      if (body.username !== undefined) changes.username = body.username === null ? null : stripAt(body.username);
      if (body.email !== undefined) changes.email = body.email;
      if (body.phone !== undefined) changes.phone = body.phone;
      if (body.name !== undefined) changes.name = body.name;
      if (body.first_name !== undefined) changes.firstName = body.first_name;
      if (body.last_name !== undefined) changes.lastName = body.last_name;
      if (body.blocked !== undefined) changes.blocked = body.blocked;
      // Clearing the last identity would leave a contact no one can find or reach. (A contact
      // from before this rule that has none can still be changed otherwise.)
      const clearsIdentity = IDENTITIES.some(([field, key]) => body[field] === null && current[key] !== null);
      const identityLeft = IDENTITIES.some(([, key]) => (key in changes ? changes[key] : current[key]) != null);
      if (clearsIdentity && !identityLeft) throw identityRequired(`A contact keeps at least one identity: this change would leave none of ${IDENTITY_LIST}`);
      if (body.tags !== undefined) changes.tags = normalizeTags(body.tags);
      if (body.custom_fields !== undefined) {
        const { value } = mergeCustomFields(current.customFields, body.custom_fields);
        if (Object.keys(value).length > MAX_CUSTOM_FIELDS) throw tooMany('custom_fields', MAX_CUSTOM_FIELDS, Object.keys(value).length);
        changes.customFields = value;
      }
      return applyChanges(db, current, changes, actor);
    },

    /** Adds tags; ones the contact already has are not an error. */
    async addTags(db: Db, workspaceId: string, id: string, tags: readonly string[], actor: Actor): Promise<Contact> {
      const current = await service.get(db, workspaceId, id, { forUpdate: true });
      const next = normalizeTags([...current.tags, ...tags]);
      if (next.length > MAX_TAGS) throw tooMany('tags', MAX_TAGS, next.length);
      return applyChanges(db, current, { tags: next }, actor);
    },

    /** Removes a tag; removing one the contact does not have is not an error either. */
    async removeTag(db: Db, workspaceId: string, id: string, tag: string, actor: Actor): Promise<Contact> {
      const current = await service.get(db, workspaceId, id, { forUpdate: true });
      const drop = tag.trim().toLowerCase();
      return applyChanges(db, current, { tags: current.tags.filter((t) => t !== drop) }, actor);
    },

    /** The filtered contacts in id order, a batch at a time (the CSV export streams these). */
    async *exportBatches(db: Db, workspaceId: string, filters: ContactFilters, batchSize = 500): AsyncGenerator<Contact[]> {
      let after: string | null = null;
      for (;;) {
        const q = contactStore.filtered(db, workspaceId, filters).orderBy('id').limit(batchSize);
        if (after) q.where('id', '>', after);
        const rows = (await q).map(toContact);
        if (rows.length) yield rows;
        if (rows.length < batchSize) return;
        after = rows[rows.length - 1].id;
      }
    },

    /** The Telegram side records every private chat a contact writes from. */
    recordChat: contactStore.recordChat,
    chatFor: contactStore.chatFor,
    contactOfChat: contactStore.contactOfChat,
    /** Contacts matching any of these identities, locked for update (a send resolving its recipient). */
    lockMatching: contactStore.lockMatching,

    /** The Telegram side: the contact blocked (kicked) or unblocked the bot; false when no contact has that chat. */
    async setBlockedByChat(db: Db, accountId: string, chatId: number, blocked: boolean): Promise<Contact | null> {
      const chat = await contactStore.contactOfChat(db, accountId, chatId);
      if (!chat) return null;
      const contact = await service.get(db, chat.workspaceId, chat.contactId);
      return contact.blocked === blocked ? contact : service.update(db, chat.workspaceId, contact.id, { blocked }, SYSTEM);
    },
  };
  return service;
}

export type ContactService = ReturnType<typeof createContactService>;
