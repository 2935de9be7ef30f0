/**
 * Workspaces are tenants. Created from the CLI (there is no API to create one: a key
 * belongs to exactly one workspace); settings are read and patched through the API.
 */
import type { Db } from '../db/knex.js';
import type { Clock } from '../lib/clock.js';
import { newId } from '../lib/ids.js';
import { AppError, notFound } from '../kernel/errors.js';
import type { PatchWorkspaceBody, WorkspaceJson } from './workspace-schemas.js';
import { workspaceStore, type Workspace } from './workspace-store.js';

export function presentWorkspace(w: Workspace): WorkspaceJson {
  return {
    id: w.id,
    name: w.name,
    mode: w.mode,
    timezone: w.timezone,
    auto_close_after_hours: w.autoCloseAfterHours,
    daily_send_limit: w.dailySendLimit,
    reopen_resolved_on_reply: w.reopenResolvedOnReply,
    lead_chat_id: w.leadChatId,
    digest_time: w.digestTime,
    created_at: w.createdAt.toISOString(),
    updated_at: w.updatedAt.toISOString(),
  };
}

/**
 * The runtime's canonical spelling of an IANA zone (`europe/berlin` → `Europe/Berlin`),
 * so what is stored is what every consumer (Intl, PostgreSQL) recognises and clients see.
 */
export function canonicalTimeZone(name: string): string {
  return new Intl.DateTimeFormat('en-US', { timeZone: name }).resolvedOptions().timeZone;
}

export function createWorkspaceService(deps: { clock: Clock; onUpdated?: (workspaceId: string) => void }) {
  return {
    create(db: Db, input: { name: string; sandbox: boolean }): Promise<Workspace> {
      const name = input.name.trim();
      if (!name || name.length > 200) throw new AppError('validation_error', 'workspace name must be 1-200 characters', { details: [{ field: 'name', error: 'must be 1-200 characters' }] });
      return workspaceStore.insert(db, { id: newId('ws'), name, mode: input.sandbox ? 'sandbox' : 'live', createdAt: deps.clock.now() });
    },

    async get(db: Db, id: string): Promise<Workspace> {
      const w = await workspaceStore.findById(db, id);
      if (!w) throw notFound('Workspace');
      return w;
    },

    list: (db: Db) => workspaceStore.list(db),

    async update(db: Db, id: string, body: PatchWorkspaceBody): Promise<Workspace> {
      const name = body.name?.trim();
      if (name === '') {
        throw new AppError('validation_error', 'name must not be blank', { details: [{ field: 'name', error: 'must not be blank', received: body.name }] });
      }
      const w = await workspaceStore.update(db, id, {
        name,
        timezone: body.timezone === undefined ? undefined : canonicalTimeZone(body.timezone),
        autoCloseAfterHours: body.auto_close_after_hours,
        dailySendLimit: body.daily_send_limit,
        reopenResolvedOnReply: body.reopen_resolved_on_reply,
        leadChatId: body.lead_chat_id,
        digestTime: body.digest_time,
      }, deps.clock.now());
      if (!w) throw notFound('Workspace');
      deps.onUpdated?.(id);
      return w;
    },
  };
}

export type WorkspaceService = ReturnType<typeof createWorkspaceService>;
