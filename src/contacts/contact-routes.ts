import { apiActor } from '../http/actor.js';
import { idParams } from '../http/common-schemas.js';
import { pageSchema, presentPage } from '../http/pagination.js';
import { defineRoute, type AppContext, type RouteDef } from '../http/route.js';
import type { Logger } from '../lib/logger.js';
import { contactsCsv } from './contact-csv.js';
import { contactSchema, contactTagParams, contactTagsBody, exportContactsQuery, listContactsQuery, patchContactBody, upsertContactBody } from './contact-schemas.js';
import { presentContact, type ContactService } from './contact-service.js';

export function contactRoutes(contacts: ContactService, logger: Logger): RouteDef[] {
  const ws = (ctx: AppContext) => ctx.state.auth.workspace.id;
  const tag = 'contacts';
  return [
    defineRoute({
      method: 'post', path: '/v1/contacts', tag, auth: 'key', scope: 'write:contacts',
      summary: 'Create or update a contact, matched on Telegram user id, username or email (201 created, 200 updated)',
      body: upsertContactBody,
      responses: {
        200: { description: 'An existing contact, updated', schema: contactSchema },
        201: { description: 'A new contact', schema: contactSchema },
      },
      async handler(ctx, { body }) {
        const { contact, created } = await contacts.upsert(ctx.state.db, ws(ctx), body, apiActor(ctx));
        ctx.status = created ? 201 : 200;
        if (created) ctx.set('Location', `/v1/contacts/${contact.id}`);
        ctx.body = presentContact(contact);
      },
    }),
    defineRoute({
      method: 'get', path: '/v1/contacts', tag, auth: 'key', scope: 'read:contacts',
      summary: 'List contacts, newest first; search with q, filter by tag',
      query: listContactsQuery,
      responses: { 200: { description: 'A page of contacts', schema: pageSchema(contactSchema) } },
      async handler(ctx, { query }) {
        ctx.body = presentPage(await contacts.list(ctx.state.db, ws(ctx), query), presentContact);
      },
    }),
    // Before /v1/contacts/:id, which would otherwise answer "Contact not found" for "export".
    defineRoute({
      method: 'get', path: '/v1/contacts/export', tag, auth: 'key', scope: 'read:contacts',
      summary: 'Every contact matching the filters as CSV, streamed',
      query: exportContactsQuery,
      responses: { 200: { description: 'CSV with a header row', contentType: 'text/csv' } },
      async handler(ctx, { query }) {
        // The pool, not a transaction: batches are separate reads, no connection held between them.
        const batches = contacts.exportBatches(ctx.state.db, ws(ctx), query);
        // Read the first batch before answering 200, so an unreachable database is a 503 like anywhere else.
        const first = await batches.next();
        async function* all() {
          if (!first.done) {
            yield first.value;
            yield* batches;
          }
        }
        const requestId = ctx.state.requestId;
        ctx.type = 'text/csv; charset=utf-8';
        ctx.set('Content-Disposition', 'attachment; filename="contacts.csv"');
        ctx.body = contactsCsv(all(), (err) => logger.error({ err, request_id: requestId }, 'contacts export failed while streaming'));
      },
    }),
    defineRoute({
      method: 'get', path: '/v1/contacts/:id', tag, auth: 'key', scope: 'read:contacts',
      summary: 'One contact',
      params: idParams('ct'), notFoundLabel: 'Contact',
      responses: { 200: { description: 'The contact', schema: contactSchema } },
      async handler(ctx, { params }) {
        ctx.body = presentContact(await contacts.get(ctx.state.db, ws(ctx), params.id));
      },
    }),
    defineRoute({
      method: 'patch', path: '/v1/contacts/:id', tag, auth: 'key', scope: 'write:contacts',
      summary: 'Change a contact; null clears a field (but not its last identity), tags are replaced, custom_fields merged',
      params: idParams('ct'), notFoundLabel: 'Contact',
      body: patchContactBody,
      responses: { 200: { description: 'The updated contact', schema: contactSchema } },
      async handler(ctx, { params, body }) {
        ctx.body = presentContact(await contacts.update(ctx.state.db, ws(ctx), params.id, body, apiActor(ctx)));
      },
    }),
    defineRoute({
      method: 'post', path: '/v1/contacts/:id/tags', tag, auth: 'key', scope: 'write:contacts',
      summary: 'Add tags (ones already there are not an error)',
      params: idParams('ct'), notFoundLabel: 'Contact',
      body: contactTagsBody,
      responses: { 200: { description: 'The contact with its tags', schema: contactSchema } },
      async handler(ctx, { params, body }) {
        ctx.body = presentContact(await contacts.addTags(ctx.state.db, ws(ctx), params.id, body.tags, apiActor(ctx)));
      },
    }),
    defineRoute({
      method: 'delete', path: '/v1/contacts/:id/tags/:tag', tag, auth: 'key', scope: 'write:contacts',
      summary: 'Remove a tag (one the contact does not have is not an error)',
      params: contactTagParams, notFoundLabel: 'Contact',
      responses: { 200: { description: 'The contact with its tags', schema: contactSchema } },
      async handler(ctx, { params }) {
        const { id, tag: removed } = params;
        ctx.body = presentContact(await contacts.removeTag(ctx.state.db, ws(ctx), id, removed, apiActor(ctx)));
      },
    }),
  ];
}
