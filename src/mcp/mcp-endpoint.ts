/**
 * POST /mcp: the MCP server of SPEC §8 over the streamable HTTP transport, stateless (no
 * session ids), so every replica can answer every request. Authentication and the key's rate
 * limit are the API's own middleware; a new server and transport serve each request.
 */
import type Router from '@koa/router';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { Middleware } from 'koa';
import type { AppState } from '../http/route.js';
import { AppError } from '../kernel/errors.js';
import { createMcpServer, prepareTools, type McpDeps } from './mcp-server.js';
import type { ToolDef } from './mcp-tools.js';

export interface McpEndpointOptions extends McpDeps {
  tools: ToolDef[];
  /** The API's authenticate middleware: 401 without a valid key, the key's rate limit. */
  authenticate: Middleware<AppState>;
  parseBody: Middleware<AppState>;
}

export const MCP_PATH = '/mcp';

export function mountMcp(router: Router<AppState>, opts: McpEndpointOptions): void {
  const tools = prepareTools(opts.tools);

  // Stateless: there is no server-to-client SSE stream to GET and no session to DELETE.
  const notAllowed: Middleware<AppState> = () => {
    throw new AppError('method_not_allowed', 'The MCP endpoint is stateless: send JSON-RPC with POST /mcp', { headers: { Allow: 'POST' } });
  };
  router.get(MCP_PATH, notAllowed);
  router.delete(MCP_PATH, notAllowed);

  router.post(MCP_PATH, opts.authenticate, opts.parseBody, async (ctx) => {
    const server = createMcpServer(tools, ctx.state.auth, ctx.state.requestId, opts);
    // JSON responses rather than an SSE stream: every call answers once, and handleRequest
    // returns only when the answer is written.
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
    await server.connect(transport);
    // The transport writes the response itself (the headers set so far, X-Request-Id and the
    // rate limit, go out with it).
    ctx.respond = false;
    try {
      await transport.handleRequest(ctx.req, ctx.res, ctx.request.body);
    } catch (err) {
      // Nothing written yet: let the problem+json middleware answer.
      if (!ctx.res.headersSent) ctx.respond = true;
      throw err;
    } finally {
      await server.close();
    }
  });
}
