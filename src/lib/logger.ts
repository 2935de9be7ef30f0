import { pino, type Logger, type DestinationStream } from 'pino';

export type { Logger };

/**
 * Paths that may hold secrets. Redaction is a second line of defence: the code
 * never logs request headers or bodies in the first place.
 */
const REDACT_PATHS = [
  'token', '*.token', 'secret', '*.secret', 'password', '*.password',
  'authorization', '*.authorization', 'headers.authorization', 'req.headers.authorization',
  'connectionString', '*.connectionString', 'databaseUrl', '*.databaseUrl',
];

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    { level, base: { service: 'topicdesk' }, redact: { paths: REDACT_PATHS, censor: '[redacted]' } },
    destination,
  );
}
