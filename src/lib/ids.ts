import { monotonicFactory } from 'ulid';

const ulid = monotonicFactory();

/** Public id prefixes, one per resource type (SPEC §2). */
export type IdPrefix =
  | 'ws' | 'acc' | 'key' | 'ag' | 'team' | 'ct' | 'tkt' | 'msg' | 'cr'
  | 'sla' | 'esc' | 'whk' | 'evt' | 'dlv' | 'req';

/** A new opaque, time-ordered id such as `key_01JD3…`. */
export function newId(prefix: IdPrefix): string {
  return `${prefix}_${ulid()}`;
}
