/** Who made a change, as events, the timeline and messages record it. */
export type ActorType = 'contact' | 'agent' | 'api' | 'system';

/** Who made a change: a customer, an agent, an API key (id = key id) or the system (jobs). */
export interface Actor {
  type: ActorType;
  id: string | null;
}

export const SYSTEM: Actor = { type: 'system', id: null };
