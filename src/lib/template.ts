/**
 * The one template engine: canned responses (`{{customer_first_name|there}}`), escalation
 * notices, and the proactive messages of POST /v1/messages/send (`{first_name}`). Two
 * syntaxes, one parser and one renderer:
 * - a placeholder names a variable; its value comes from a Map the caller fills with exactly
 *   the listed variables, so a template can read nothing else (no property access, no
 *   expressions, no prototype: `{{constructor}}` is just an unknown name);
 * - rendering is one pass: a value that itself looks like a placeholder stays as written;
 * - output is plain text: nothing is escaped or interpreted (messages go without parse_mode).
 */

export interface TemplateSyntax {
  open: string;
  close: string;
  /** `{{name|fallback}}`: the fallback is used when the value is empty. */
  fallbacks: boolean;
  /**
   * What may stand between the braces. Text that does not match is not a placeholder but
   * text (`{"a":1}` in a proactive message stays as written).
   */
  inner: RegExp;
}

/** `{{ name }}` or `{{ name | fallback }}`: anything up to the closing braces is a placeholder. */
export const DOUBLE_BRACES: TemplateSyntax = { open: '{{', close: '}}', fallbacks: true, inner: /^[\s\S]*$/ };

/** `{first_name}`: a bare word only; other braces are text. */
export const SINGLE_BRACES: TemplateSyntax = { open: '{', close: '}', fallbacks: false, inner: /^[a-z_]+$/ };

export type Segment =
  | { kind: 'text'; text: string }
  | { kind: 'variable'; name: string; fallback: string | null; raw: string };

export interface ParsedTemplate {
  segments: Segment[];
  /** An opening `{{` with no closing `}}` after it (double braces only; single braces are text then). */
  unclosed: boolean;
}

export function parseTemplate(text: string, syntax: TemplateSyntax = DOUBLE_BRACES): ParsedTemplate {
  const segments: Segment[] = [];
  let literal = '';
  let unclosed = false;
  let i = 0;
  while (i < text.length) {
    const start = text.indexOf(syntax.open, i);
    if (start < 0) break;
    const end = text.indexOf(syntax.close, start + syntax.open.length);
    if (end < 0) {
      unclosed = syntax.fallbacks;
      break;
    }
    const inner = text.slice(start + syntax.open.length, end);
    if (!syntax.inner.test(inner)) {
      // Not a placeholder: keep the opening brace as text and look again just after it.
      literal += text.slice(i, start + 1);
      i = start + 1;
      continue;
    }
    literal += text.slice(i, start);
    if (literal) segments.push({ kind: 'text', text: literal });
    literal = '';
    const pipe = syntax.fallbacks ? inner.indexOf('|') : -1;
    segments.push({
      kind: 'variable',
      name: (pipe < 0 ? inner : inner.slice(0, pipe)).trim(),
      fallback: pipe < 0 ? null : inner.slice(pipe + 1).trim(),
      raw: text.slice(start, end + syntax.close.length),
    });
    i = end + syntax.close.length;
  }
  literal += text.slice(i);
  if (literal) segments.push({ kind: 'text', text: literal });
  return { segments, unclosed };
}

export interface TemplateProblems {
  /** Names used that are not in the list, in order of first use (`""` for `{{}}`). */
  unknown: string[];
  unclosed: boolean;
}

/** What is wrong with a template written against `known` variables (empty lists: nothing). */
export function templateProblems(text: string, known: readonly string[], syntax: TemplateSyntax = DOUBLE_BRACES): TemplateProblems {
  const allowed = new Set(known);
  const { segments, unclosed } = parseTemplate(text, syntax);
  const unknown = new Set<string>();
  for (const s of segments) if (s.kind === 'variable' && !allowed.has(s.name)) unknown.add(s.name);
  return { unknown: [...unknown], unclosed };
}

export interface Rendered {
  text: string;
  /** Variables that were empty and had no fallback (rendered as ""), in order of first use. */
  missing: string[];
}

/**
 * Fills the variables in from `values`. A name not in `values` is left as written (a proactive
 * message's `{other}`, or a template saved before a variable was retired).
 */
export function renderTemplate(text: string, values: ReadonlyMap<string, string | null>, syntax: TemplateSyntax = DOUBLE_BRACES): Rendered {
  const missing = new Set<string>();
  let out = '';
  for (const s of parseTemplate(text, syntax).segments) {
    if (s.kind === 'text') {
      out += s.text;
      continue;
    }
    if (!values.has(s.name)) {
      out += s.raw;
      continue;
    }
    const value = values.get(s.name)?.trim() ?? '';
    if (value) out += value;
    else if (s.fallback !== null) out += s.fallback;
    else missing.add(s.name);
  }
  return { text: out, missing: [...missing] };
}
