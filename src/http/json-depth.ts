/**
 * How deeply a parsed JSON value nests arrays and objects, measured without recursion: a
 * client's body of 10,000 nested arrays parses fine but overflows the stack of any recursive
 * walk (the NUL check, schema helpers, stable stringify for idempotency hashing). The body
 * parser refuses such bodies before anything else walks them.
 */

/** Deep enough for every body the API and Telegram send (a Telegram update nests about 10). */
export const MAX_JSON_DEPTH = 32;

/** True when `value` nests arrays or objects more than `max` levels deep (`{}` is one level). */
export function nestsDeeperThan(value: unknown, max: number): boolean {
  const stack: { value: unknown; depth: number }[] = [{ value, depth: 0 }];
  while (stack.length) {
    const { value: v, depth } = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    if (depth + 1 > max) return true;
    for (const child of Array.isArray(v) ? v : Object.values(v)) {
      if (child !== null && typeof child === 'object') stack.push({ value: child, depth: depth + 1 });
    }
  }
  return false;
}
