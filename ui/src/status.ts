// The status pages: configuration (secrets masked by the server), flags, runtime and build
// information and TSDB cardinality.
import { api, el } from './api';

export async function configPage(root: HTMLElement) {
  const { data, warnings } = await api<{ yaml: string }>('/api/v1/status/config');
  root.append(el('h1', {}, 'Configuration'));
  if (warnings && warnings.length) {
    root.append(el('div', { class: 'error', id: 'config-warnings' }, el('strong', {}, 'Accepted but not carried out: '),
      el('ul', {}, ...warnings.map(w => el('li', {}, w)))));
  }
  root.append(el('pre', { id: 'config-yaml' }, data.yaml));
}

function kvTable(obj: Record<string, any>): HTMLElement {
  return el('table', {}, el('tbody', {}, ...Object.entries(obj).sort().map(([k, v]) => el('tr', {}, el('th', {}, k), el('td', {}, String(v))))));
}

export async function flagsPage(root: HTMLElement) {
  const { data } = await api<Record<string, string>>('/api/v1/status/flags');
  const filter = el('input', { type: 'search', placeholder: 'Filter flags', 'aria-label': 'filter' });
  const holder = el('div');
  const render = () => holder.replaceChildren(kvTable(Object.fromEntries(Object.entries(data).filter(([k, v]) => (k + v).includes(filter.value)))));
  filter.addEventListener('input', render);
  root.append(el('h1', {}, 'Command-line flags'), el('div', { class: 'toolbar' }, filter), holder);
  render();
}

export async function statusPage(root: HTMLElement) {
  const [rt, bi] = await Promise.all([api<any>('/api/v1/status/runtimeinfo'), api<any>('/api/v1/status/buildinfo')]);
  root.append(el('h1', {}, 'Status'), el('h2', {}, 'Runtime'), kvTable(rt.data), el('h2', {}, 'Build'), kvTable(bi.data));
}

export async function tsdbPage(root: HTMLElement) {
  const { data } = await api<any>('/api/v1/status/tsdb');
  const list = (title: string, rows: { name: string; value: number }[]) =>
    el('div', { class: 'panel' }, el('h2', {}, title), el('table', {}, el('tbody', {}, ...(rows || []).map(r => el('tr', {}, el('td', {}, r.name), el('td', {}, String(r.value)))))));
  root.append(el('h1', {}, 'TSDB status'), el('div', { class: 'panel' }, el('h2', {}, 'Head'), kvTable(data.headStats || {})),
    list('Top series count by metric name', data.seriesCountByMetricName),
    list('Top label names by value count', data.labelValueCountByLabelName),
    list('Top memory by label name (bytes)', data.memoryInBytesByLabelName),
    list('Top series count by label pair', data.seriesCountByLabelValuePair));
}
