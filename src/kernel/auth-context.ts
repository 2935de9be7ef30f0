import type { Scope } from './scopes.js';

/** Who is calling: the API key and its workspace, as authentication found them. */
export interface AuthContext {
  keyId: string;
  keyName: string;
  scopes: Scope[];
  mode: 'live' | 'test';
  expiresAt: Date | null;
  rateLimitPerMinute: number;
  workspace: { id: string; name: string; mode: 'live' | 'sandbox' };
}
