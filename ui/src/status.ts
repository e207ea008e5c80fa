// The status pages: configuration (secrets masked by the server), flags, runtime and build
// information and TSDB cardinality.
import { api, el } from './api';
import type { RemoteWriteQueue, TsdbStatus } from './types';

export async function configPage(root: HTMLElement) {
  const { data, warnings } = await api<{ yaml: string }>('/api/v1/status/config');
  root.append(el('h1', {}, 'Configuration'));
  if (warnings && warnings.length) {
    root.append(
      el(
        'div',
        { class: 'error', id: 'config-warnings' },
        el('strong', {}, 'Accepted but not carried out: '),
        el('ul', {}, ...warnings.map((w) => el('li', {}, w))),
      ),
    );
  }
  root.append(el('pre', { id: 'config-yaml' }, data.yaml));
}

/** A status endpoint's flat object: runtime information, build information, head statistics. */
type Flat = Record<string, string | number | boolean | null>;

function kvTable(obj: Flat, show: (k: string, v: Flat[string]) => string = (_k, v) => String(v)): HTMLElement {
  return el(
    'table',
    {},
    el(
      'tbody',
      {},
      ...Object.entries(obj)
        .sort()
        .map(([k, v]) => el('tr', {}, el('th', {}, k), el('td', {}, show(k, v)))),
    ),
  );
}

/** The head's time bounds (epoch milliseconds) as UTC times, the number kept beside them. */
function headValue(k: string, v: Flat[string]): string {
  const ms = Number(v);
  if (!/Time$/.test(k) || !Number.isFinite(ms) || Math.abs(ms) > 8.64e15) return String(v);
  return `${new Date(ms)
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d+Z$/, ' UTC')} (${v})`;
}

export async function flagsPage(root: HTMLElement) {
  const { data } = await api<Record<string, string>>('/api/v1/status/flags');
  const filter = el('input', { type: 'search', placeholder: 'Filter flags', 'aria-label': 'filter' });
  const holder = el('div');
  const render = () =>
    holder.replaceChildren(
      kvTable(Object.fromEntries(Object.entries(data).filter(([k, v]) => (k + v).includes(filter.value)))),
    );
  filter.addEventListener('input', render);
  root.append(el('h1', {}, 'Command-line flags'), el('div', { class: 'toolbar' }, filter), holder);
  render();
}

export async function statusPage(root: HTMLElement) {
  const [rt, bi, rw] = await Promise.all([
    api<Flat>('/api/v1/status/runtimeinfo'),
    api<Flat>('/api/v1/status/buildinfo'),
    api<{ queues: RemoteWriteQueue[] }>('/api/v1/status/remote_write'),
  ]);
  root.append(
    el('h1', {}, 'Status'),
    el('h2', {}, 'Runtime'),
    kvTable(rt.data),
    el('h2', {}, 'Build'),
    kvTable(bi.data),
    el('h2', {}, 'Remote write'),
    remoteWrite(rw.data.queues),
  );
}

// One row per remote_write queue: how far it got and what last went wrong.
function remoteWrite(queues: RemoteWriteQueue[]): HTMLElement {
  if (!queues.length)
    return el('p', { id: 'remote-write', class: 'muted' }, 'No remote_write endpoints in the configuration.');
  const sent = (ms: number) => (ms ? new Date(ms).toISOString() : 'never');
  return el(
    'table',
    { id: 'remote-write' },
    el(
      'thead',
      {},
      el(
        'tr',
        {},
        ...['Name', 'URL', 'Samples sent', 'Pending', 'Failed', 'Shards', 'Newest sent', 'Last error'].map((h) =>
          el('th', {}, h),
        ),
      ),
    ),
    el(
      'tbody',
      {},
      ...queues.map((q) =>
        el(
          'tr',
          { class: 'queue', 'data-name': q.name },
          el('td', {}, q.name),
          el('td', { class: 'url' }, q.url),
          el('td', {}, String(q.samplesSent)),
          el('td', {}, String(q.samplesPending)),
          el('td', {}, String(q.samplesFailed)),
          el('td', {}, String(q.shards)),
          el('td', {}, sent(q.highestSentTimestampMs)),
          el('td', { class: 'last-error' }, q.lastError || ''),
        ),
      ),
    ),
  );
}

export async function tsdbPage(root: HTMLElement) {
  const { data } = await api<TsdbStatus>('/api/v1/status/tsdb');
  const list = (title: string, rows: { name: string; value: number }[]) =>
    el(
      'div',
      { class: 'panel' },
      el('h2', {}, title),
      el(
        'table',
        {},
        el('tbody', {}, ...(rows || []).map((r) => el('tr', {}, el('td', {}, r.name), el('td', {}, String(r.value))))),
      ),
    );
  root.append(
    el('h1', {}, 'TSDB status'),
    el('div', { class: 'panel' }, el('h2', {}, 'Head'), kvTable(data.headStats || {}, headValue)),
    list('Top series count by metric name', data.seriesCountByMetricName),
    list('Top label names by value count', data.labelValueCountByLabelName),
    list('Top memory by label name (bytes)', data.memoryInBytesByLabelName),
    list('Top series count by label pair', data.seriesCountByLabelValuePair),
  );
}
