/**
 * The intake form of a workspace (SPEC §3.1, §4.2): read (the default when none is set),
 * replace, reset to the default. Every form stored has passed checkForm; the bot reads the
 * current one with form() and keeps a snapshot of it for a form in progress, so changing
 * the form never disturbs a customer halfway through.
 */
import type { Db } from '../db/knex.js';
import { AppError } from '../kernel/errors.js';
import type { Clock } from '../lib/clock.js';
import { checkForm, DEFAULT_INTAKE_FORM, type FormField, type IntakeForm } from './intake-form.js';
import type { IntakeFormJson } from './intake-form-schemas.js';
import { intakeFormStore } from './intake-form-store.js';

export interface IntakeFormView {
  fields: FormField[];
  isDefault: boolean;
  /** null for the default form. */
  updatedAt: Date | null;
}

/** The form in `body`, or a 422 validation_error naming each problem. */
export function formOrThrow(body: unknown): IntakeForm {
  const checked = checkForm(body);
  if (checked.ok) return checked.form;
  const summary = checked.details.slice(0, 3).map((d) => `${d.field} ${d.error}`).join('; ');
  throw new AppError('validation_error', `The intake form is invalid: ${summary}`, { details: checked.details });
}

export function presentIntakeForm(view: IntakeFormView): IntakeFormJson {
  return { fields: view.fields as IntakeFormJson['fields'], is_default: view.isDefault, updated_at: view.updatedAt?.toISOString() ?? null };
}

export function createIntakeFormService(deps: { clock: Clock }) {
  const { clock } = deps;

  async function get(db: Db, workspaceId: string): Promise<IntakeFormView> {
    const stored = await intakeFormStore.find(db, workspaceId);
    if (!stored) return { fields: structuredClone(DEFAULT_INTAKE_FORM.fields), isDefault: true, updatedAt: null };
    return { fields: stored.fields, isDefault: false, updatedAt: stored.updatedAt };
  }

  return {
    get,

    /** The form the bot asks now (a copy: safe to keep as a snapshot). */
    async form(db: Db, workspaceId: string): Promise<IntakeForm> {
      return { fields: (await get(db, workspaceId)).fields };
    },

    async replace(db: Db, workspaceId: string, body: unknown): Promise<IntakeFormView> {
      const form = formOrThrow(body);
      const stored = await intakeFormStore.upsert(db, workspaceId, form.fields, clock.now());
      return { fields: stored.fields, isDefault: false, updatedAt: stored.updatedAt };
    },

    /** Back to the default form; a no-op when none was set. */
    async reset(db: Db, workspaceId: string): Promise<void> {
      await intakeFormStore.remove(db, workspaceId);
    },
  };
}

export type IntakeFormService = ReturnType<typeof createIntakeFormService>;
