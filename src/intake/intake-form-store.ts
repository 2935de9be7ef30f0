/** The intake form a workspace has set (intake_forms; no row = the default form). */
import type { Db } from '../db/knex.js';
import type { FormField } from './intake-form.js';

export interface StoredForm {
  workspaceId: string;
  fields: FormField[];
  updatedAt: Date;
}

const toStoredForm = (r: any): StoredForm => ({ workspaceId: r.workspace_id, fields: r.fields, updatedAt: r.updated_at });

export const intakeFormStore = {
  async find(db: Db, workspaceId: string): Promise<StoredForm | null> {
    const row = await db('intake_forms').where({ workspace_id: workspaceId }).first();
    return row ? toStoredForm(row) : null;
  },

  async upsert(db: Db, workspaceId: string, fields: FormField[], at: Date): Promise<StoredForm> {
    // JSON text, not the array: node-postgres would send a JS array as a PostgreSQL array.
    const [row] = await db('intake_forms')
      .insert({ workspace_id: workspaceId, fields: JSON.stringify(fields), updated_at: at })
      .onConflict('workspace_id').merge(['fields', 'updated_at'])
      .returning('*');
    return toStoredForm(row);
  },

  /** True when there was a form to remove. */
  async remove(db: Db, workspaceId: string): Promise<boolean> {
    return (await db('intake_forms').where({ workspace_id: workspaceId }).del()) > 0;
  },
};
