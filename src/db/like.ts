/** Text for ILIKE that matches itself: `%`, `_` and the escape character lose their meaning. */
export const likeEscape = (s: string) => s.replace(/[\\%_]/g, (c) => `\\${c}`);
