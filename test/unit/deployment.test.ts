/**
 * The production files: the Dockerfile builds and runs what `npm start` does, as a non-root user, from a
 * final stage without dev dependencies; docker-compose.yml sets only variables the config
 * knows (a typo there would be silently ignored at start-up). CI has no Docker daemon, so the
 * files are checked, not built.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const read = (f: string) => readFileSync(path.join(ROOT, f), 'utf8');

/** The environment variables src/config.ts reads (each `set('NAME', …)`), plus NODE_ENV. */
function knownVariables(): Set<string> {
  const names = [...read('src/config.ts').matchAll(/\bset\('([A-Z][A-Z0-9_]*)'/g)].map((m) => m[1]);
  assert.ok(names.length >= 10, 'found the variables config.ts reads');
  return new Set([...names, 'NODE_ENV']);
}

describe('production files', () => {
  const dockerfile = read('Dockerfile');
  const stages = dockerfile.split(/^FROM /m).slice(1);
  const final = stages.at(-1)!;

  it('Dockerfile: multi-stage; the final stage runs `npm start`\'s command as the node user', () => {
    assert.ok(stages.length >= 2, 'a build stage and a final stage');
    const cmd = /^CMD (\[.*\])$/m.exec(final);
    assert.ok(cmd, 'the final stage has an exec-form CMD');
    const { start, prestart } = JSON.parse(read('package.json')).scripts as Record<string, string>;
    assert.deepEqual(JSON.parse(cmd[1]), start.split(' '));
    // `npm start` builds dist/ first (prestart); the image runs the build stage's build instead.
    assert.ok(stages[0].includes(prestart), `the build stage runs \`${prestart}\``);
    assert.match(final, /^USER node$/m);
    assert.doesNotMatch(final, /npm (ci|install)/, 'no install in the final stage: it copies pruned production dependencies');
    assert.match(stages[0], /npm prune --omit=dev/);
  });

  it('Dockerfile: everything it copies exists, and every ENV it sets is a variable the config knows', () => {
    for (const m of dockerfile.matchAll(/^COPY (?!--from)(?:--\S+ )*(.+) \S+$/gm)) {
      for (const f of m[1].split(' ')) assert.ok(existsSync(path.join(ROOT, f)), `COPY ${f}`);
    }
    const known = knownVariables();
    for (const m of dockerfile.matchAll(/^ENV (.+)$/gm)) {
      for (const pair of m[1].split(' ')) assert.ok(known.has(pair.split('=')[0]), `ENV ${pair}`);
    }
  });

  it('docker-compose.yml: PostgreSQL 16 and the service, whose environment names only variables the config knows', () => {
    const compose = parse(read('docker-compose.yml'));
    assert.equal(compose.services.postgres.image, 'postgres:16');
    const env = compose.services.topicdesk.environment as Record<string, string>;
    const known = knownVariables();
    assert.ok(Object.keys(env).length > 0);
    for (const name of Object.keys(env)) assert.ok(known.has(name), `${name} is not a variable topicdesk reads`);
    assert.match(env.DATABASE_URL, /^postgres:\/\/[^@]+@postgres:5432\//, 'points at the compose PostgreSQL');
    // The commented-out Telegram variables are real names too.
    for (const m of read('docker-compose.yml').matchAll(/^\s*#\s*([A-Z][A-Z0-9_]+):/gm)) assert.ok(known.has(m[1]), m[1]);
  });

  it('a LICENSE file, named in package.json', () => {
    assert.match(read('LICENSE'), /^MIT License/);
    assert.equal(JSON.parse(read('package.json')).license, 'MIT');
  });
});
