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

/**
 * Standard output for the service's log: lines are written in blocks of up to 4 KiB, so under
 * load one write carries many lines (a write per access-log line was about 3 % of the service's
 * CPU on `GET /v1/me`), and whatever waits is flushed every 200 ms. At exit, a crash included,
 * pino's destination flushes itself (test/unit/logger.test.ts holds both).
 */
export function bufferedStdout(): DestinationStream {
  const destination = pino.destination({ dest: 1, minLength: 4096, sync: false });
  setInterval(() => destination.flush(), 200).unref();
  return destination;
}
