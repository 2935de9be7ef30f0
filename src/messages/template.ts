import { renderTemplate, SINGLE_BRACES } from '../lib/template.js';

/** The contact details `POST /v1/messages/send` fills into `{first_name}` `{last_name}` `{username}`. */
export interface RecipientValues {
  firstName: string | null;
  lastName: string | null;
  name: string | null;
  username: string | null;
}

/**
 * Fills the variables in (the shared template engine, single-brace syntax). A value the contact
 * does not have becomes empty, except first_name, which falls back to the full name; any other
 * `{word}` is left as written.
 */
export function renderVariables(text: string, r: RecipientValues): string {
  const values = new Map<string, string | null>([
    ['first_name', r.firstName ?? r.name],
    ['last_name', r.lastName],
    ['username', r.username],
  ]);
  return renderTemplate(text, values, SINGLE_BRACES).text;
}
