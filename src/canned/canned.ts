/** Pure rules of canned responses: template checks and "did you mean" for shortcuts. */
import { distance } from 'fastest-levenshtein';
import type { FieldError } from '../kernel/errors.js';
import { templateProblems } from '../lib/template.js';
import { CANNED_VARIABLES } from './canned-variables.js';

const MAX_TYPO_LENGTH = 40;

const known = CANNED_VARIABLES.map((v) => `{{${v}}}`).join(', ');

/** What is wrong with a title or body as a template: unknown variables (named) and unclosed braces. */
export function templateErrors(fields: { title?: string; body?: string }): FieldError[] {
  const errors: FieldError[] = [];
  for (const field of ['title', 'body'] as const) {
    const text = fields[field];
    if (text === undefined) continue;
    const { unknown, unclosed } = templateProblems(text, CANNED_VARIABLES);
    for (const name of unknown) {
      errors.push({ field, error: name ? `uses the unknown variable {{${name}}}; the variables are ${known}` : `has an empty {{}}; the variables are ${known}`, received: name });
    }
    if (unclosed) errors.push({ field, error: 'has a {{ without a closing }}' });
  }
  return errors;
}

/**
 * The shortcuts closest to a mistyped one, best first: those it begins or is found in,
 * then those a few edits away (at most a third of its length, and at least 2).
 */
export function closestShortcuts(given: string, shortcuts: readonly string[], max = 3): string[] {
  // Shortcuts are at most 32 characters: a longer word is no typo of one, and comparing a whole
  // message against every shortcut would cost seconds.
  if (given.length > MAX_TYPO_LENGTH) return [];
  const g = given.toLowerCase();
  const reach = Math.max(2, Math.floor(g.length / 3));
  return shortcuts
    .map((s) => ({ s, score: s.startsWith(g) ? 0 : s.includes(g) ? 0.5 : distance(g, s) }))
    .filter((x) => x.score <= reach)
    .sort((a, b) => a.score - b.score || a.s.localeCompare(b.s))
    .slice(0, max)
    .map((x) => x.s);
}
