// Module boundaries of topicdesk, checked by `npm run lint` (see README, "Lint and boundaries").
// A module is a folder src/<name>/; each file directly in src/ (main, app, container,
// config, cli) is its own node. Type-only imports count everywhere (tsPreCompilationDeps),
// except where a rule says otherwise. The folder-level cycle check that complements
// `no-circular` is scripts/check-folder-cycles.mjs.

/** Modules that are infrastructure below the domain. */
const INFRA = '(lib|kernel|db|send-queue)';

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      // Protects: every module can be read, tested and moved on its own; a cycle between
      // two files means neither can load or be understood without the other.
      name: 'no-circular',
      severity: 'error',
      comment: 'No import cycles between modules (files); folder cycles: scripts/check-folder-cycles.mjs.',
      from: { path: '^src/' },
      to: { circular: true },
    },
    {
      // Protects: a module's tables are its own. Other modules go through its service,
      // so invariants (events, counters, tenancy checks) cannot be bypassed. Domain types
      // that still live in store files may be imported with `import type`.
      name: 'no-foreign-store',
      severity: 'error',
      comment: "A module never imports another module's *-store.ts or *-inbox.ts (type-only imports allowed).",
      from: { path: '^src/([^/]+)/' },
      to: {
        path: '^src/[^/]+/[^/]+-(store|inbox)\\.ts$',
        pathNot: '^src/$1/',
        dependencyTypesNot: ['type-only'],
      },
    },
    {
      // Protects: the domain is transport-free. Services run the same from the HTTP API,
      // the Telegram bots, jobs and MCP; only route definitions and API schemas may know
      // about http/, and nothing in the domain knows the Telegraf adapter, the MCP server or
      // the dashboard. The front ends (http, telegram, mcp, dashboard) may use each other: MCP
      // reuses the API's schemas, presenters, problem mapping and idempotency store; the
      // dashboard mounts the API's metrics routes behind its session.
      name: 'domain-not-to-transport',
      severity: 'error',
      comment: 'Domain modules never import src/http/, src/telegram/, src/mcp/ or src/dashboard/ (except their HTTP adapters: *-routes.ts, *-schemas.ts, *-middleware.ts).',
      from: {
        path: '^src/[^/]+/',
        pathNot: ['^src/(http|telegram|mcp|dashboard)/', '-(routes|schemas|middleware)\\.ts$'],
      },
      to: { path: '^src/(http|telegram|mcp|dashboard)/' },
    },
    {
      // Protects: infrastructure stays below the domain, so any module may use it without
      // creating a cycle. It may use other infrastructure (lib, kernel, db) and the
      // configuration type (src/config.ts, a leaf), nothing else in src/.
      name: 'infra-not-to-domain',
      severity: 'error',
      comment: 'src/{lib,kernel,db,send-queue}/ import only lib/, kernel/, db/, their own folder and src/config.ts.',
      from: { path: `^src/${INFRA}/` },
      to: {
        path: '^src/',
        pathNot: ['^src/(lib|kernel|db)/', '^src/$1/', '^src/config\\.ts$'],
      },
    },
    {
      // Protects: migrations are frozen history. Importing application code would make an
      // old migration change meaning when that code changes.
      name: 'migrations-not-to-src',
      severity: 'error',
      comment: 'migrations/ never import src/.',
      from: { path: '^migrations/' },
      to: { path: '^src/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    // `import type` and type-only re-exports are dependencies too.
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      extensions: ['.ts', '.js', '.mjs', '.cjs', '.json'],
    },
    reporterOptions: {
      text: { highlightFocused: true },
    },
  },
};
