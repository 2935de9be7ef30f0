/** The dashboard's HTML: server-rendered shells; the figures are drawn by assets/dashboard.js. */

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

function layout(title: string, body: string, scripts: string[] = []): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)}</title>
<link rel="icon" href="/dashboard/assets/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/dashboard/assets/dashboard.css">
</head>
<body>
${body}
${scripts.map((s) => `<script src="/dashboard/assets/${s}"></script>`).join('\n')}
</body>
</html>
`;
}

/** The sign-in form (API key); `error` is one line above it. */
export function signInPage(error?: string): string {
  return layout('topicdesk · sign in', `<main class="narrow">
<h1>topicdesk dashboard</h1>
${error ? `<p class="error" role="alert" id="error">${esc(error)}</p>` : ''}
<p>Leads and admins: send <code>/dashboard</code> in the support group and open the link the bot answers with.</p>
<p>Or sign in with an API key that has the <code>read:analytics</code> scope:</p>
<form method="post" action="/dashboard/login" class="signin">
<label for="key">API key</label>
<input id="key" name="key" type="password" autocomplete="off" required placeholder="td_live_…">
<button type="submit">Sign in</button>
</form>
</main>`);
}

/**
 * What a one-time link opens: a button that uses the link. Using it only on POST keeps link
 * previews (Telegram fetches URLs posted in chats) from spending it.
 */
export function confirmLinkPage(token: string, who: string): string {
  return layout('topicdesk · sign in', `<main class="narrow">
<h1>topicdesk dashboard</h1>
<p>Sign in as <strong>${esc(who)}</strong>. This link works once.</p>
<form method="post" action="/dashboard/login" class="signin">
<input type="hidden" name="token" value="${esc(token)}">
<button type="submit" id="continue">Open the dashboard</button>
</form>
</main>`);
}

export function dashboardPage(s: { workspace: string; who: string }): string {
  const figure = (id: string, label: string) => `<div class="figure"><span class="label">${label}</span><span class="value" id="m-${id}">—</span></div>`;
  const chart = (id: string, title: string) => `<section class="panel"><h2>${title}</h2><div class="chart"><canvas id="${id}" aria-label="${title}"></canvas></div></section>`;
  return layout(`topicdesk · ${s.workspace}`, `<header>
<div><h1>${esc(s.workspace)}</h1><span class="who">${esc(s.who)}</span></div>
<div class="controls">
<label for="range">Range</label>
<select id="range"><option value="7" selected>Last 7 days</option><option value="30">Last 30 days</option><option value="90">Last 90 days</option></select>
<form method="post" action="/dashboard/logout"><button type="submit" id="signout">Sign out</button></form>
</div>
</header>
<main>
<p id="status" class="status" role="status">Loading…</p>
<section class="figures">
${figure('open', 'Open')}
${figure('unassigned', 'Unassigned')}
${figure('at_risk', 'At risk')}
${figure('breached', 'Breached')}
${figure('frt_p50', 'First response p50')}
${figure('frt_p90', 'First response p90')}
${figure('sla', 'SLA compliance')}
${figure('csat', 'CSAT')}
</section>
<section class="charts">
${chart('chart-frt', 'First response by day (p50 / p90, minutes)')}
${chart('chart-age', 'Backlog by age')}
${chart('chart-priority', 'Backlog by priority')}
${chart('chart-sla', 'SLA compliance by target (%)')}
${chart('chart-csat', 'CSAT distribution')}
</section>
<section class="panel">
<h2>Agents</h2>
<div class="table-wrap"><table id="agents">
<thead><tr><th>Agent</th><th>Assigned</th><th>Resolved</th><th>Open now</th><th>First response p50</th><th>Resolution p50</th><th>CSAT</th></tr></thead>
<tbody></tbody>
</table></div>
</section>
</main>`, ['chart.umd.min.js', 'dashboard.js']);
}
