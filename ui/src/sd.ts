// /service-discovery: every discovered target with its discovered and final labels, dropped ones
// included, and the relabel step that dropped or changed each (from /api/v1/targets/relabel_steps).
import { api, el, errorText, labelChips, discoveryWarnings, warnsAbout } from './api';
import type { RelabelRule, TargetsData } from './types';

interface Step {
  rule: RelabelRule;
  output: Record<string, string>;
  keep: boolean;
}

function ruleText(r: RelabelRule): string {
  const parts = [`action: ${r.action}`];
  if (r.source_labels?.length) parts.push(`source_labels: [${r.source_labels.join(', ')}]`);
  if (r.regex && r.regex !== '(.*)') parts.push(`regex: ${r.regex}`);
  if (r.target_label) parts.push(`target_label: ${r.target_label}`);
  if (r.replacement && r.replacement !== '$1') parts.push(`replacement: ${r.replacement}`);
  return parts.join(', ');
}

async function explain(pool: string, labels: Record<string, string>, into: HTMLElement) {
  into.replaceChildren(el('span', { class: 'muted' }, 'loading…'));
  try {
    const { data } = await api<{ steps: Step[] }>('/api/v1/targets/relabel_steps', {
      scrapePool: pool,
      labels: JSON.stringify(labels),
    });
    let prev = labels;
    const rows = data.steps.map((s, i) => {
      const changed = s.keep ? Object.keys({ ...prev, ...s.output }).filter((k) => prev[k] !== s.output[k]) : [];
      const what = !s.keep
        ? el('b', { class: 'error' }, 'dropped the target here')
        : changed.length
          ? el(
              'span',
              {},
              'changed ',
              ...changed.map((k) => el('span', { class: 'label' }, `${k}="${s.output[k] ?? ''}"`)),
            )
          : el('span', { class: 'muted' }, 'no change');
      prev = s.output;
      return el(
        'tr',
        { class: s.keep ? '' : 'dropped-by' },
        el('td', {}, String(i + 1)),
        el('td', {}, el('code', {}, ruleText(s.rule))),
        el('td', {}, what),
      );
    });
    into.replaceChildren(
      el(
        'table',
        {},
        el('thead', {}, el('tr', {}, el('th', {}, '#'), el('th', {}, 'Rule'), el('th', {}, 'Effect'))),
        el('tbody', {}, ...rows),
      ),
    );
  } catch (e) {
    into.replaceChildren(el('div', { class: 'error' }, errorText(e)));
  }
}

export async function sdPage(root: HTMLElement) {
  const [{ data, warnings }, pools0] = await Promise.all([
    api<TargetsData>('/api/v1/targets'),
    api<{ scrapePools: string[] }>('/api/v1/scrape_pools'),
  ]);
  const pools = new Map<string, { discovered: Record<string, string>; labels: Record<string, string> | null }[]>();
  for (const p of pools0.data.scrapePools || []) pools.set(p, []);
  for (const t of data.activeTargets) {
    if (!pools.has(t.scrapePool)) pools.set(t.scrapePool, []);
    pools.get(t.scrapePool)!.push({ discovered: t.discoveredLabels, labels: t.labels });
  }
  for (const t of data.droppedTargets || []) {
    const pool = t.scrapePool || t.discoveredLabels.job || '';
    if (!pools.has(pool)) pools.set(pool, []);
    pools.get(pool)!.push({ discovered: t.discoveredLabels, labels: null });
  }
  const filter = el('input', { type: 'search', placeholder: 'Filter labels', 'aria-label': 'filter' });
  const list = el('div');
  root.append(
    el('h1', {}, 'Service discovery'),
    ...[discoveryWarnings(warnings)].filter((x): x is HTMLElement => x !== null),
    el(
      'div',
      { class: 'toolbar' },
      filter,
      el('span', { class: 'muted' }, 'Click "why?" on a target to see each relabel step.'),
    ),
    list,
  );
  const render = () => {
    const q = filter.value.toLowerCase();
    list.replaceChildren();
    for (const [pool, ts] of [...pools].sort()) {
      if (!ts.length) {
        if (q) continue;
        const why = (warnings || []).filter((x) => warnsAbout(x, pool));
        list.append(
          el(
            'details',
            { class: 'pool', open: true, 'data-pool': pool },
            el('summary', {}, el('h2', {}, pool), el('span', { class: 'count' }, 'nothing discovered')),
            why.length
              ? el('ul', { class: 'error' }, ...why.map((x) => el('li', {}, x)))
              : el('div', { class: 'empty' }, 'Discovery has found nothing for this job (yet).'),
          ),
        );
        continue;
      }
      const shown = ts.filter((t) => !q || JSON.stringify(t.discovered).toLowerCase().includes(q));
      const active = ts.filter((t) => t.labels).length;
      const rows = shown.map((t) => {
        const why = el('div');
        return el(
          'tr',
          { class: t.labels ? 'active' : 'dropped' },
          el('td', {}, labelChips(t.discovered)),
          el('td', {}, t.labels ? labelChips(t.labels) : el('b', { class: 'error' }, 'Dropped')),
          el('td', {}, el('button', { onclick: () => explain(pool, t.discovered, why) }, 'why?'), why),
        );
      });
      list.append(
        el(
          'details',
          { class: 'pool', open: true },
          el(
            'summary',
            {},
            el('h2', {}, pool),
            el('span', { class: 'count' }, `${active} active / ${ts.length - active} dropped`),
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
                el('th', {}, 'Discovered labels'),
                el('th', {}, 'Target labels'),
                el('th', {}, 'Relabeling'),
              ),
            ),
            el('tbody', {}, ...rows),
          ),
        ),
      );
    }
    if (!pools.size) list.append(el('div', { class: 'empty' }, 'The configuration has no scrape jobs.'));
  };
  filter.addEventListener('input', render);
  render();
}
