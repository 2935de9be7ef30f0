import type { Actor } from '../kernel/actor.js';
import type { AppContext } from './route.js';

/** Changes made through the API are attributed to the calling key. */
export const apiActor = (ctx: AppContext): Actor => ({ type: 'api', id: ctx.state.auth.keyId });
