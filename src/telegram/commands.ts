/** Bot commands as agents and customers type them: `/assign@our_bot @sam` → { name: 'assign', args: '@sam' }. */
export interface Command {
  name: string;
  args: string;
}

/**
 * Null when the text is not a command, or is addressed to another bot (`/help@other_bot`).
 * Names are lower-cased: Telegram clients suggest them lower-case, people type them any way.
 */
export function parseCommand(text: string | undefined, botUsername: string | null): Command | null {
  const m = /^\/([A-Za-z0-9_]{1,32})(?:@([A-Za-z0-9_]{3,64}))?(?:\s+([\s\S]*))?$/.exec(text?.trim() ?? '');
  if (!m) return null;
  if (m[2] && botUsername && m[2].toLowerCase() !== botUsername.toLowerCase()) return null;
  return { name: m[1].toLowerCase(), args: (m[3] ?? '').trim() };
}

/** `/tag +vip -trial billing` → { add: ['vip', 'billing'], remove: ['trial'] }. */
export function parseTagChanges(args: string): { add: string[]; remove: string[] } {
  const add: string[] = [];
  const remove: string[] = [];
  for (const word of args.split(/[\s,]+/).filter(Boolean)) {
    if (word.startsWith('-')) remove.push(word.slice(1).replace(/^#/, ''));
    else add.push(word.replace(/^\+/, '').replace(/^#/, ''));
  }
  return { add: add.filter(Boolean), remove: remove.filter(Boolean) };
}
