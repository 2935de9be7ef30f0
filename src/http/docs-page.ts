import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { ERROR_CODES } from '../kernel/errors.js';

/**
 * Human docs at /docs: Swagger UI (swagger-ui-dist, served from node_modules: no CDN, works
 * offline) rendering /v1/openapi.json, plus a static table of error codes that problem
 * bodies' `type` links to (`/docs#error-validation_error`).
 */

const require = createRequire(import.meta.url);
const DIST = path.dirname(require.resolve('swagger-ui-dist/package.json'));
const SWAGGER_VERSION: string = JSON.parse(readFileSync(path.join(DIST, 'package.json'), 'utf8')).version;

/** Our own start-up script: a file, not inline, so the CSP can forbid inline scripts. */
const INIT_JS = `window.ui = SwaggerUIBundle({
  url: '/v1/openapi.json',
  dom_id: '#swagger-ui',
  deepLinking: true,
  layout: 'BaseLayout',
  presets: [SwaggerUIBundle.presets.apis],
  // No call to the public validator service: the docs work offline and leak nothing.
  validatorUrl: null,
  defaultModelsExpandDepth: 0,
  displayRequestDuration: true,
  filter: true,
});
`;

/** The files /docs/assets/{file} serves: a fixed list, so no path ever reaches the file system from a URL. */
const ASSETS: Record<string, { type: string; load: () => Buffer | string }> = {
  'swagger-ui-bundle.js': { type: 'application/javascript; charset=utf-8', load: () => readFileSync(path.join(DIST, 'swagger-ui-bundle.js')) },
  'swagger-ui.css': { type: 'text/css; charset=utf-8', load: () => readFileSync(path.join(DIST, 'swagger-ui.css')) },
  'favicon-32x32.png': { type: 'image/png', load: () => readFileSync(path.join(DIST, 'favicon-32x32.png')) },
  'docs-init.js': { type: 'application/javascript; charset=utf-8', load: () => INIT_JS },
};
export const DOCS_ASSET_NAMES = Object.keys(ASSETS);

const loaded = new Map<string, Buffer | string>();
/** A renderer file, read once (the bundle is 1.7 MB; reading it per request would be waste). */
export function docsAsset(name: string): { type: string; body: Buffer | string } | undefined {
  const asset = ASSETS[name];
  if (!asset) return undefined;
  if (!loaded.has(name)) loaded.set(name, asset.load());
  return { type: asset.type, body: loaded.get(name)! };
}

/**
 * Only our own origin. Styles allow 'unsafe-inline' because Swagger UI sets style attributes
 * from React (styles cannot run code); scripts do not. img data: is for the CSS's inline SVG icons.
 */
export const DOCS_CSP = [
  "default-src 'none'", "script-src 'self'", "style-src 'self' 'unsafe-inline'", "img-src 'self' data:",
  "connect-src 'self'", "font-src 'self'", "base-uri 'none'", "form-action 'none'", "frame-ancestors 'none'",
].join('; ');

/** Long-cached assets: the version in the URL changes whenever their content can. */
export const DOCS_ASSET_CACHE = 'public, max-age=31536000, immutable';

const esc = (s: unknown) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

export function renderDocsPage(info: { title: string; version: string }): string {
  const v = encodeURIComponent(`${SWAGGER_VERSION}-${info.version}`);
  const asset = (name: string) => `/docs/assets/${name}?v=${v}`;
  const errors = Object.entries(ERROR_CODES)
    .map(([code, [status, title]]) => `<tr id="error-${code}"><td><code>${code}</code></td><td>${status}</td><td>${esc(title)}</td></tr>`).join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(info.title)} ${esc(info.version)}</title>
<link rel="icon" type="image/png" href="${asset('favicon-32x32.png')}">
<link rel="stylesheet" href="${asset('swagger-ui.css')}">
</head><body>
<div id="swagger-ui"><noscript><p>The interactive reference needs JavaScript; the document itself is at <a href="/v1/openapi.json">/v1/openapi.json</a>.</p></noscript></div>
<div class="swagger-ui"><div class="wrapper">
<h2 id="errors">Error codes</h2>
<p>Every error is <code>application/problem+json</code> with a stable <code>code</code>; its <code>type</code> links here.</p>
<table><thead><tr><th>code</th><th>status</th><th>title</th></tr></thead><tbody>
${errors}
</tbody></table></div></div>
<script src="${asset('swagger-ui-bundle.js')}"></script>
<script src="${asset('docs-init.js')}"></script>
</body></html>
`;
}
