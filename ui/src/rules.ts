// The rules and alerts pages: every group with its rules' health, last error and evaluation
// time; every alerting rule with its active alerts, filterable by state. Warnings the API
// returns (configured parts that do not run, such as sending to Alertmanager) are shown above.
import { api, el, labelChips, ago, warningsBox } from './api';
import type { RulesData } from './types';

function kv(obj: Record<string, string> | undefined): HTMLElement {
  const entries = Object.entries(obj || {});
  if (!entries.length) return el('span', { class: 'muted' }, 'none');
  return el(
    'table',
    { class: 'kv' },
    el('tbody', {}, ...entries.sort().map(([k, v]) => el('tr', {}, el('th', {}, k), el('td', {}, v)))),
  );
}

function seconds(s: number): string {
  if (!s) return '0s';
  if (s < 0.001) return `${(s * 1e6).toFixed(0)}µs`;
  if (s < 1) return `${(s * 1000).toFixed(1)}ms`;
  return `${s.toFixed(2)}s`;
}

function durationText(s: number): string {
  if (!s) return '';
  const parts: string[] = [];
  let rest = Math.round(s);
  for (const [unit, n] of [
    ['h', 3600],
    ['m', 60],
    ['s', 1],
  ] as [string, number][]) {
    if (rest >= n) {
      parts.push(`${Math.floor(rest / n)}${unit}`);
      rest %= n;
    }
  }
  return parts.join('');
}

export async function rulesPage(root: HTMLElement) {
  const res = await api<RulesData>('/api/v1/rules');
  root.append(el('h1', {}, 'Rules'));
  const w = warningsBox(res.warnings, 'not-running', 'Configured but not running: ');
  if (w) root.append(w);
  const groups = res.data.groups || [];
  if (!groups.length) {
    root.append(
      el(
        'div',
        { class: 'empty', id: 'no-rules' },
        res.warnings?.length
          ? 'No rule groups are loaded: see why above.'
          : 'No rule groups are loaded: the configuration names no rule files, or they hold no groups.',
      ),
    );
    return;
  }
  for (const g of groups) {
    const rows = g.rules.map((r) =>
      el(
        'tr',
        { class: `rule health-${r.health}`, 'data-rule': r.name },
        el(
          'td',
          {},
          el('div', {}, el('strong', {}, r.type === 'alerting' ? 'alert: ' : 'record: '), r.name),
          el('pre', { class: 'query' }, r.query),
          r.type === 'alerting' && r.duration ? el('div', {}, `for: ${durationText(r.duration)}`) : null,
          r.type === 'alerting' && r.keepFiringFor
            ? el('div', {}, `keep_firing_for: ${durationText(r.keepFiringFor)}`)
            : null,
          Object.keys(r.labels || {}).length ? labelChips(r.labels ?? {}) : null,
        ),
        el(
          'td',
          { class: 'health' },
          r.health,
          r.lastError ? el('div', { class: 'error rule-error' }, r.lastError) : null,
        ),
        el('td', {}, ago(r.lastEvaluation)),
        el('td', {}, seconds(r.evaluationTime)),
      ),
    );
    root.append(
      el(
        'div',
        { class: 'panel rule-group', 'data-group': g.name },
        el(
          'h2',
          {},
          g.name,
          el(
            'span',
            { class: 'muted' },
            ` ${g.file} · every ${durationText(g.interval)} · last ${ago(g.lastEvaluation)} · took ${seconds(g.evaluationTime)}`,
          ),
        ),
        el(
          'table',
          {},
          el(
            'thead',
            {},
            el(
              'tr',
              {},
              el('th', {}, 'Rule'),
              el('th', {}, 'Health'),
              el('th', {}, 'Last evaluation'),
              el('th', {}, 'Evaluation time'),
            ),
          ),
          el('tbody', {}, ...rows),
        ),
      ),
    );
  }
}

export async function alertsPage(root: HTMLElement) {
  const res = await api<RulesData>('/api/v1/rules', { type: 'alert' });
  root.append(el('h1', {}, 'Alerts'));
  const w = warningsBox(res.warnings, 'not-running', 'Configured but not running: ');
  if (w) root.append(w);
  const rules = (res.data.groups || []).flatMap((g) =>
    g.rules.map((r) => ({ ...r, state: r.state ?? 'unknown', group: g.name })),
  );
  if (!rules.length) {
    root.append(el('div', { class: 'empty', id: 'no-alerts' }, 'No alerting rules are loaded.'));
    return;
  }
  const states = ['inactive', 'pending', 'firing'];
  const shown: Record<string, boolean> = { inactive: true, pending: true, firing: true };
  const counts: Record<string, number> = { inactive: 0, pending: 0, firing: 0, unknown: 0 };
  for (const r of rules) counts[r.state] = (counts[r.state] || 0) + 1;
  const holder = el('div', { id: 'alert-rules' });
  const render = () => {
    holder.replaceChildren(
      ...rules
        .filter((r) => shown[r.state === 'unknown' ? 'inactive' : r.state])
        .map((r) => {
          const alerts = (r.alerts || []).map((a) =>
            el(
              'tr',
              { class: `alert state-${a.state}` },
              el('td', {}, labelChips(a.labels)),
              el('td', {}, a.state),
              el('td', {}, ago(a.activeAt)),
              el('td', {}, a.value),
              el('td', {}, kv(a.annotations)),
            ),
          );
          return el(
            'details',
            {
              class: `panel alert-rule state-${r.state}`,
              'data-rule': r.name,
              open: r.state !== 'inactive' && r.state !== 'unknown',
            },
            el(
              'summary',
              {},
              el('span', { class: `badge state-${r.state}` }, r.state),
              ` ${r.name} (${(r.alerts || []).length} active)`,
              el('span', { class: 'muted' }, ` ${r.group}`),
            ),
            el('pre', { class: 'query' }, r.query),
            r.lastError ? el('div', { class: 'error rule-error' }, r.lastError) : null,
            alerts.length
              ? el(
                  'table',
                  {},
                  el(
                    'thead',
                    {},
                    el(
                      'tr',
                      {},
                      el('th', {}, 'Labels'),
                      el('th', {}, 'State'),
                      el('th', {}, 'Active since'),
                      el('th', {}, 'Value'),
                      el('th', {}, 'Annotations'),
                    ),
                  ),
                  el('tbody', {}, ...alerts),
                )
              : null,
          );
        }),
    );
  };
  const boxes = states.map((s) => {
    const box = el('input', { type: 'checkbox', checked: true, id: `show-${s}` }) as HTMLInputElement;
    box.addEventListener('change', () => {
      shown[s] = box.checked;
      render();
    });
    return el('label', { class: `state-${s}` }, box, ` ${s} (${counts[s] + (s === 'inactive' ? counts.unknown : 0)})`);
  });
  root.append(el('div', { class: 'toolbar' }, ...boxes), holder);
  render();
}
