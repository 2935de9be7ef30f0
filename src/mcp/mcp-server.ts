/**
 * One MCP server per request (stateless: any replica answers any request), bound to the
 * caller's API key. tools/list shows the tools the key's scopes allow; tools/call checks the
 * scope again, validates the arguments with the API's schemas (ajv, as the routes do), runs
 * a write in one transaction with its idempotency key, and answers the API's JSON as
 * structuredContent. Every AppError becomes a tool error (isError) with its code and message.
 *
 * Why the SDK's low-level handlers (McpServer.server) and not McpServer.registerTool: in SDK
 * 1.x registerTool takes Zod schemas only, and our tools' inputs are the API's JSON Schemas,
 * validated by the same ajv as the API; converting them to Zod would make a second, drifting
 * copy.
 */
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { CallToolRequestSchema, ErrorCode, ListToolsRequestSchema, McpError, type CallToolResult, type Tool } from '@modelcontextprotocol/sdk/types.js';
import type { Knex } from '../db/knex.js';
import { inTransaction } from '../db/transaction.js';
import { toAppError } from '../http/errors.js';
import { fingerprint, IDEMPOTENCY_KEY_PATTERN, runUnderKey, type IdempotencyKeys } from '../http/idempotency-keys.js';
import type { AuthContext } from '../kernel/auth-context.js';
import { AppError } from '../kernel/errors.js';
import { check, compile } from '../kernel/validation.js';
import type { Logger } from '../lib/logger.js';
import type { ToolDef, ToolOutput } from './mcp-tools.js';

export interface McpDeps {
  db: Knex;
  logger: Logger;
  keys: IdempotencyKeys;
  version: string;
}

/** A tool with its listed definition and compiled validator, built once per process. */
interface PreparedTool {
  def: ToolDef;
  listed: Tool;
  validate: ReturnType<typeof compile>;
}

const idempotencyKeyProperty = {
  type: 'string',
  pattern: IDEMPOTENCY_KEY_PATTERN,
  description: 'Like the API\'s Idempotency-Key header: the same key with the same arguments within 24 h replays the first result and changes nothing; with other arguments it is refused (idempotency_key_reused). 1-255 printable ASCII characters.',
} as const;

/** Compiles the tools' schemas once; the servers built per request share them. */
export function prepareTools(defs: ToolDef[]): Map<string, PreparedTool> {
  const out = new Map<string, PreparedTool>();
  for (const def of defs) {
    const input = def.kind === 'write'
      ? { ...def.input, properties: { ...(def.input.properties as object), idempotency_key: idempotencyKeyProperty } }
      : def.input;
    out.set(def.name, {
      def,
      listed: {
        name: def.name,
        title: def.title,
        description: `${def.description} Needs the scope ${def.scope}.`,
        inputSchema: input as Tool['inputSchema'],
        outputSchema: def.output as Tool['outputSchema'],
        annotations: def.kind === 'read' ? { title: def.title, readOnlyHint: true } : { title: def.title, readOnlyHint: false },
      },
      // Read tools take what the API's query takes, defaults filled in (limit 50…); write tools
      // what its body takes, coerced never.
      validate: compile(input, def.kind === 'read' ? 'query' : 'body'),
    });
  }
  return out;
}

function success(out: ToolOutput): CallToolResult {
  // The JSON goes in a text block too: clients that show the model only `content` still see it.
  return { structuredContent: out.json as Record<string, unknown>, content: [{ type: 'text', text: out.summary }, { type: 'text', text: JSON.stringify(out.json) }] };
}

export function toolError(err: AppError): CallToolResult {
  const details = err.extra.details;
  const error = { code: err.code, message: err.detail, ...(details ? { details } : {}), ...err.extra.fields };
  const lines = [`${err.code}: ${err.detail}`, ...(details ?? []).map((d) => `- ${d.field}: ${d.error}`)];
  return { isError: true, structuredContent: { error }, content: [{ type: 'text', text: lines.join('\n') }] };
}

/** The arguments checked as the API checks a request; a validation_error names the fields. */
function validated(tool: PreparedTool, args: Record<string, unknown>): Record<string, unknown> {
  const input = structuredClone(args);
  try {
    check(tool.validate, input, tool.def.kind === 'read' ? 'query' : 'body');
  } catch (err) {
    if (!(err instanceof AppError) || err.code !== 'validation_error') throw err;
    const summary = (err.extra.details ?? []).slice(0, 3).map((d) => `${d.field} ${d.error}`).join('; ');
    throw new AppError('validation_error', `Invalid arguments for ${tool.def.name}: ${summary || err.detail}`, { details: err.extra.details });
  }
  tool.def.validate?.(input);
  return input;
}

/** The McpServer for one request of `auth`'s key. */
export function createMcpServer(tools: Map<string, PreparedTool>, auth: AuthContext, requestId: string, deps: McpDeps): McpServer {
  const server = new McpServer(
    { name: 'topicdesk', version: deps.version },
    {
      capabilities: { tools: {} },
      instructions: 'topicdesk support desk: tickets, their messages, contacts and canned responses of one workspace. Every write acts like the HTTP API (the customer gets replies in Telegram). Pass idempotency_key on writes you may retry.',
    },
  );
  const allowed = (t: PreparedTool) => auth.scopes.includes(t.def.scope);

  async function runWrite(tool: PreparedTool, input: Record<string, unknown>): Promise<CallToolResult> {
    const { idempotency_key: key, ...args } = input as { idempotency_key?: string };
    if (key === undefined) {
      // One transaction, as for an API request: events, webhooks and Telegram sends are rows
      // written with the change, so they happen exactly when it commits.
      return success(await inTransaction(deps.db, (trx) => tool.def.run(trx, auth, args)));
    }
    const use = {
      workspaceId: auth.workspace.id, key, method: 'MCP', path: `tools/call ${tool.def.name}`,
      fingerprint: fingerprint('MCP', `tools/call ${tool.def.name}`, {}, args),
    };
    const save = async (trx: Knex.Transaction, status: number, result: CallToolResult) => {
      await deps.keys.save(trx, use, { status, type: 'application/json', headers: {}, body: JSON.stringify(result) });
      return result;
    };
    // Business errors (not_found, invalid_transition…) are remembered like successes, their writes undone.
    const result = await runUnderKey<CallToolResult>(deps.db, deps.keys, use, {
      replay: (stored): CallToolResult => ({ ...(JSON.parse(stored.body!) as CallToolResult), _meta: { 'topicdesk/idempotent_replayed': true } }),
      run: async (trx) => save(trx, 200, success(await tool.def.run(trx, auth, args))),
      refuse: (trx, error) => save(trx, error.status, toolError(error)),
    });
    return result!;
  }

  server.server.setRequestHandler(ListToolsRequestSchema, () => ({
    tools: [...tools.values()].filter(allowed).map((t) => t.listed),
  }));

  server.server.setRequestHandler(CallToolRequestSchema, async (request) => {
    const tool = tools.get(request.params.name);
    // Not a tool at all: a protocol error, as the MCP specification asks.
    if (!tool) throw new McpError(ErrorCode.InvalidParams, `Unknown tool: ${request.params.name}`);
    try {
      if (!allowed(tool)) {
        throw new AppError('forbidden', `This API key lacks the scope ${tool.def.scope}, which ${tool.def.name} needs`, { fields: { required_scope: tool.def.scope } });
      }
      const input = validated(tool, request.params.arguments ?? {});
      if (tool.def.kind === 'read') return success(await tool.def.run(deps.db, auth, input));
      return await runWrite(tool, input);
    } catch (err) {
      // Unexpected errors are logged and hidden, as the API does.
      return toolError(toAppError(err, deps.logger, requestId));
    }
  });

  return server;
}
