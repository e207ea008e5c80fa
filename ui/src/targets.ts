// /targets: targets grouped by scrape pool, collapsible, with health, labels, last scrape,
// duration and the last error in full; filter by health and free text.
import { api, el, labelChips, ago, discoveryWarnings, warnsAbout } from './api';

interface Target {
  discoveredLabels: Record<string, string>;
  labels: Record<string, string>;
  scrapePool: string;
  scrapeUrl: string;
  lastError: string;
  lastScrape: string;
  lastScrapeDuration: number;
  health: string;
}

export async function targetsPage(root: HTMLElement) {
  const params = new URLSearchParams(location.search);
  const search = el('input', {
    type: 'search',
    placeholder: 'Filter by endpoint or labels',
    value: params.get('search') || '',
    'aria-label': 'filter',
  });
  const health = el(
    'select',
    { 'aria-label': 'health' },
    el('option', { value: '' }, 'All health'),
    el('option', { value: 'up' }, 'Up'),
    el('option', { value: 'down' }, 'Down'),
    el('option', { value: 'unknown' }, 'Unknown'),
  );
  health.value = params.get('health') || '';
  const collapseAll = el('button', {}, 'Collapse all');
  const list = el('div', { id: 'pools' });
  root.append(el('h1', {}, 'Targets'), el('div', { class: 'toolbar' }, search, health, collapseAll), list);
  const [{ data, warnings }, pools0] = await Promise.all([
    api<{ activeTargets: Target[] }>('/api/v1/targets', { state: 'active' }),
    api<{ scrapePools: string[] }>('/api/v1/scrape_pools'),
  ]);
  const w = discoveryWarnings(warnings);
  if (w) root.insertBefore(w, list);
  // Every configured job is listed, with no targets too, and why where that is known.
  const configured = pools0.data.scrapePools || [];
  const render = () => {
    const q = search.value.toLowerCase();
    const h = health.value;
    const u = new URL(location.href);
    q ? u.searchParams.set('search', search.value) : u.searchParams.delete('search');
    h ? u.searchParams.set('health', h) : u.searchParams.delete('health');
    history.replaceState(null, '', u);
    const pools = new Map<string, Target[]>();
    for (const p of configured) pools.set(p, []);
    for (const t of data.activeTargets) {
      if (!pools.has(t.scrapePool)) pools.set(t.scrapePool, []);
      pools.get(t.scrapePool)!.push(t);
    }
    list.replaceChildren();
    if (!pools.size)
      list.append(el('div', { class: 'empty', id: 'no-jobs' }, 'No targets: the configuration has no scrape jobs.'));
    for (const [pool, all] of [...pools].sort()) {
      const up = all.filter((t) => t.health === 'up').length;
      const shown = all.filter(
        (t) =>
          (!h || t.health === h) &&
          (!q || t.scrapeUrl.toLowerCase().includes(q) || JSON.stringify(t.labels).toLowerCase().includes(q)),
      );
      if (!shown.length && (q || h)) continue;
      if (!all.length) {
        const why = (warnings || []).filter((x) => warnsAbout(x, pool));
        list.append(
          el(
            'details',
            { class: 'pool', open: true, 'data-pool': pool },
            el('summary', {}, el('h2', {}, pool), el('span', { class: 'count bad' }, '0 targets')),
            why.length
              ? el('ul', { class: 'error' }, ...why.map((x) => el('li', {}, x)))
              : el(
                  'div',
                  { class: 'empty' },
                  'Discovery has found no targets for this job (yet), or relabeling dropped them all (see Service discovery).',
                ),
          ),
        );
        continue;
      }
      const rows = shown.map((t) =>
        el(
          'tr',
          { 'data-health': t.health },
          el('td', {}, el('a', { href: t.scrapeUrl }, t.scrapeUrl)),
          el('td', {}, el('span', { class: `health ${t.health}` }, t.health)),
          el('td', {}, labelChips(t.labels)),
          el(
            'td',
            {},
            ago(t.lastScrape),
            el('br'),
            el('span', { class: 'muted' }, `${(t.lastScrapeDuration * 1000).toFixed(1)} ms`),
          ),
          el('td', {}, t.lastError ? el('div', { class: 'error' }, t.lastError) : ''),
        ),
      );
      const details = el(
        'details',
        { class: 'pool', open: true },
        el(
          'summary',
          {},
          el('h2', {}, pool),
          el('span', { class: up === all.length ? 'count' : 'count bad' }, `${up}/${all.length} up`),
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
              el('th', {}, 'Endpoint'),
              el('th', {}, 'State'),
              el('th', {}, 'Labels'),
              el('th', {}, 'Last scrape'),
              el('th', {}, 'Error'),
            ),
          ),
          el('tbody', {}, ...rows),
        ),
      );
      list.append(details);
    }
  };
  search.addEventListener('input', render);
  health.addEventListener('change', render);
  collapseAll.addEventListener('click', () =>
    list.querySelectorAll('details').forEach((d) => ((d as HTMLDetailsElement).open = false)),
  );
  render();
}
