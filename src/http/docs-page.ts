import { ERROR_CODES } from '../kernel/errors.js';

const esc = (s: unknown) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** Human docs at /docs, rendered from the OpenAPI document (no external assets: works offline). */
export function renderDocsPage(doc: { info: { title: string; version: string }; paths: Record<string, Record<string, any>> }): string {
  const byTag = new Map<string, string[]>();
  for (const [path, ops] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      const params = (op.parameters ?? []).map((p: any) => `<code>${esc(p.name)}</code> (${esc(p.in)}${p.required ? ', required' : ''})`).join(', ');
      const body = op.requestBody ? `<details><summary>body schema</summary><pre>${esc(JSON.stringify(op.requestBody.content['application/json'].schema, null, 2))}</pre></details>` : '';
      const row = `<div class="op"><span class="m ${method}">${method.toUpperCase()}</span> <code>${esc(path)}</code>
        ${op['x-required-scope'] ? `<span class="scope">${esc(op['x-required-scope'])}</span>` : ''}
        <p>${esc(op.summary)}</p>${params ? `<p class="params">${params}</p>` : ''}${body}</div>`;
      const tag = op.tags?.[0] ?? 'other';
      byTag.set(tag, [...(byTag.get(tag) ?? []), row]);
    }
  }
  const sections = [...byTag].map(([tag, rows]) => `<h2>${esc(tag)}</h2>${rows.join('\n')}`).join('\n');
  const errors = Object.entries(ERROR_CODES).map(([code, [status, title]]) => `<tr id="error-${code}"><td><code>${code}</code></td><td>${status}</td><td>${esc(title)}</td></tr>`).join('');
  return `<!doctype html><html><head><meta charset="utf-8"><title>${esc(doc.info.title)}</title>
<style>body{font:15px/1.5 system-ui,sans-serif;max-width:960px;margin:2em auto;padding:0 1em;color:#222}
.op{border-top:1px solid #ddd;padding:.6em 0}.m{display:inline-block;width:4.5em;font-weight:600}
.get{color:#0a6}.post{color:#06c}.patch,.put{color:#a60}.delete{color:#c33}.scope{background:#eef;border-radius:4px;padding:0 .4em;margin-left:.5em;font-size:90%}
.params{color:#555;font-size:90%}pre{background:#f6f6f6;padding:.5em;overflow:auto}td{padding:.1em .8em}</style></head>
<body><h1>${esc(doc.info.title)} <small>${esc(doc.info.version)}</small></h1>
<p>Authenticate with <code>Authorization: Bearer td_live_…</code>. Machine-readable spec: <a href="/v1/openapi.json">/v1/openapi.json</a>.
Every POST/PATCH/DELETE accepts <code>Idempotency-Key</code>; lists take <code>limit</code>, <code>offset</code> or <code>cursor</code>.</p>
${sections}
<h2 id="errors">Errors</h2><p>Every error is <code>application/problem+json</code> with a stable <code>code</code>:</p><table>${errors}</table>
</body></html>`;
}
