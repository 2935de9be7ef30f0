/**
 * The HTTP server around the app. Node's parser refuses some requests before the app sees
 * them (a malformed request line, headers over the size limit, a request that took too long)
 * and by default answers those with a bare status line: no body, no request id. Here they get
 * the same problem+json as every other error, with an X-Request-Id that is also logged.
 */
import http, { type RequestListener, type Server } from 'node:http';
import type { Socket } from 'node:net';
import { AppError } from '../kernel/errors.js';
import { newId } from '../lib/ids.js';
import type { Logger } from '../lib/logger.js';
import { problemBody } from './errors.js';

interface Refusal { status: number; title: string; detail: string }

/** What each parser refusal becomes (Node's own choice of status, with words for it). */
function refusalOf(err: NodeJS.ErrnoException): Refusal {
  switch (err.code) {
    case 'HPE_HEADER_OVERFLOW':
      return { status: 431, title: 'Request header fields too large', detail: `The request headers are larger than the server accepts (${Math.round(http.maxHeaderSize / 1024)} KB in all)` };
    case 'HPE_CHUNK_EXTENSIONS_OVERFLOW':
      return { status: 413, title: 'Payload too large', detail: 'The chunk extensions of the request body are too large' };
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return { status: 408, title: 'Request timeout', detail: 'The request did not arrive in time' };
    default:
      return { status: 400, title: 'Bad request', detail: 'The request is not valid HTTP/1.1 (request line, headers or body framing)' };
  }
}

const REASONS: Record<number, string> = { 400: 'Bad Request', 408: 'Request Timeout', 413: 'Payload Too Large', 431: 'Request Header Fields Too Large' };

/** The raw HTTP/1.1 response for a request the parser refused; the connection closes after it. */
export function clientErrorResponse({ status, title, detail }: Refusal, requestId: string): string {
  const code = status === 413 ? 'payload_too_large' : 'bad_request';
  const body = JSON.stringify(problemBody(new AppError(code, detail, { status, fields: { title } }), requestId));
  return [
    `HTTP/1.1 ${status} ${REASONS[status]}`,
    'Content-Type: application/problem+json',
    `Content-Length: ${Buffer.byteLength(body)}`,
    `X-Request-Id: ${requestId}`,
    'Cache-Control: no-store',
    'Connection: close',
    '',
    body,
  ].join('\r\n');
}

/** Answers parser refusals as problem+json where the socket still allows a response. */
export function answerClientErrors(server: Server, logger: Logger): void {
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    // Like Node's default: answer only if nothing of a response has gone out on this socket
    // (a keep-alive connection may be mid-response), and never to a peer that is gone.
    const inFlight = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
    if (err.code === 'ECONNRESET' || !socket.writable || inFlight?.headersSent) {
      socket.destroy();
      return;
    }
    const requestId = newId('req');
    const refusal = refusalOf(err);
    logger.info({ request_id: requestId, status: refusal.status, reason: err.code ?? err.message }, 'request refused by the HTTP parser');
    socket.end(clientErrorResponse(refusal, requestId), () => socket.destroy());
  });
}

/** An HTTP server for the app, with parser refusals answered as problem+json. */
export function createHttpServer(handler: RequestListener, logger: Logger): Server {
  const server = http.createServer(handler);
  answerClientErrors(server, logger);
  return server;
}
