/* The team leads' dashboard: reads the metrics API through the session and draws it.
   Plain browser JavaScript, no build step; Chart.js (UMD) is loaded before this file. */
'use strict';
(function () {
  const REFRESH_MS = 60_000;
  const DAY_MS = 86_400_000;
  const $ = (id) => document.getElementById(id);
  const charts = {};
  let loads = 0;

  // Figures are redrawn in place every minute: animations would only make them flicker.
  Chart.defaults.animation = false;
  Chart.defaults.maintainAspectRatio = false;

  function duration(s) {
    if (s === null || s === undefined) return '—';
    if (s < 60) return `${Math.round(s)}s`;
    if (s < 3600) return `${Math.round(s / 60)}m`;
    if (s < 86400) return `${(s / 3600).toFixed(1)}h`;
    return `${(s / 86400).toFixed(1)}d`;
  }

  /** One headline figure: the formatted text, and the raw number in data-raw (what tests compare). */
  function figure(id, raw, text) {
    const el = $(`m-${id}`);
    el.textContent = text;
    el.dataset.raw = raw === null || raw === undefined ? '' : String(raw);
  }

  /** Met over decided, across the three targets; null when nothing was due. */
  function slaCompliance(targets) {
    let met = 0;
    let decided = 0;
    for (const t of Object.values(targets)) { met += t.met; decided += t.met + t.breached; }
    return decided ? (met / decided) * 100 : null;
  }

  async function get(path) {
    const res = await fetch(path, { credentials: 'same-origin', headers: { Accept: 'application/json' } });
    if (res.status === 401) {
      // The session ended (signed out elsewhere, expired, or its grant revoked).
      window.location.assign('/dashboard/login');
      throw new Error('signed out');
    }
    if (!res.ok) throw new Error(`${path}: ${res.status}`);
    return res.json();
  }

  function draw(id, type, labels, datasets, extra) {
    if (charts[id]) {
      charts[id].data.labels = labels;
      charts[id].data.datasets = datasets;
      charts[id].update();
      return;
    }
    charts[id] = new Chart($(id), {
      type,
      data: { labels, datasets },
      options: Object.assign({ plugins: { legend: { display: datasets.length > 1 } }, scales: { y: { beginAtZero: true } } }, extra),
    });
  }

  const minutes = (s) => (s === null ? null : Math.round((s / 60) * 10) / 10);

  function render(frt, sla, backlog, csat, agents) {
    figure('open', backlog.total, String(backlog.total));
    figure('unassigned', backlog.unassigned, String(backlog.unassigned));
    figure('at_risk', sla.at_risk_now, String(sla.at_risk_now));
    figure('breached', sla.breached_open_now, String(sla.breached_open_now));
    figure('frt_p50', frt.overall.p50_seconds, duration(frt.overall.p50_seconds));
    figure('frt_p90', frt.overall.p90_seconds, duration(frt.overall.p90_seconds));
    const compliance = slaCompliance(sla.targets);
    figure('sla', compliance, compliance === null ? '—' : `${compliance.toFixed(1)}%`);
    figure('csat', csat.average, csat.average === null ? '—' : `${csat.average.toFixed(2)} / 5`);

    draw('chart-frt', 'line', frt.groups.map((g) => g.key), [
      { label: 'p50', data: frt.groups.map((g) => minutes(g.p50_seconds)), borderColor: '#2563eb', backgroundColor: '#2563eb' },
      { label: 'p90', data: frt.groups.map((g) => minutes(g.p90_seconds)), borderColor: '#f59e0b', backgroundColor: '#f59e0b' },
    ]);
    const age = backlog.by_age;
    draw('chart-age', 'bar', ['< 1h', '1–4h', '4–24h', '1–3d', '> 3d'], [
      { label: 'tickets', data: [age.lt_1h, age.h1_to_4, age.h4_to_24, age.d1_to_3, age.gt_3d], backgroundColor: '#6366f1' },
    ]);
    const priorities = Object.keys(backlog.by_priority);
    draw('chart-priority', 'bar', priorities, [
      { label: 'tickets', data: priorities.map((p) => backlog.by_priority[p]), backgroundColor: ['#94a3b8', '#3b82f6', '#f97316', '#dc2626'] },
    ]);
    const targets = ['first_response', 'next_response', 'resolution'];
    draw('chart-sla', 'bar', targets.map((t) => t.replace('_', ' ')), [
      { label: 'compliance %', data: targets.map((t) => sla.targets[t].compliance_percent), backgroundColor: '#16a34a' },
    ], { scales: { y: { beginAtZero: true, max: 100 } } });
    draw('chart-csat', 'bar', ['1', '2', '3', '4', '5'], [
      { label: 'ratings', data: ['1', '2', '3', '4', '5'].map((k) => csat.distribution[k]), backgroundColor: ['#dc2626', '#f97316', '#eab308', '#84cc16', '#16a34a'] },
    ]);

    const body = $('agents').tBodies[0];
    body.replaceChildren(...agents.items.map((a) => {
      const tr = document.createElement('tr');
      // textContent only: agent names come from Telegram profiles.
      for (const v of [a.name, a.assigned, a.resolved, a.open_now, duration(a.first_response.p50_seconds), duration(a.resolution.p50_seconds),
        a.csat_average === null ? '—' : a.csat_average.toFixed(2)]) {
        const td = document.createElement('td');
        td.textContent = String(v);
        tr.append(td);
      }
      return tr;
    }));
  }

  async function load() {
    const days = Number($('range').value);
    const to = new Date();
    const from = new Date(to.getTime() - days * DAY_MS);
    const range = `from=${encodeURIComponent(from.toISOString())}&to=${encodeURIComponent(to.toISOString())}`;
    const api = '/dashboard/api/metrics';
    try {
      const results = await Promise.all([
        get(`${api}/first-response?${range}&group_by=day`),
        get(`${api}/sla?${range}`),
        get(`${api}/backlog`),
        get(`${api}/csat?${range}`),
        get(`${api}/agents?${range}`),
      ]);
      render(...results);
      $('status').textContent = `Updated ${to.toLocaleTimeString()} · last ${days} days`;
      document.body.dataset.range = String(days);
      document.body.dataset.loads = String(++loads);
    } catch (err) {
      if (err.message !== 'signed out') $('status').textContent = `Could not load the figures (${err.message}); retrying in a minute.`;
    }
  }

  $('range').addEventListener('change', load);
  load();
  setInterval(load, REFRESH_MS);
})();
