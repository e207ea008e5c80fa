// Thin helpers over vigil's Prometheus-compatible HTTP API.
import { safeHref } from './format';

export { metricText } from './format';

export interface ApiResult<T> {
  data: T;
  warnings?: string[];
  infos?: string[];
}

export async function api<T>(path: string, params: Record<string, string> = {}): Promise<ApiResult<T>> {
  const q = new URLSearchParams(params).toString();
  // Relative to the page's <base>, so the UI works under --web.route-prefix.
  const res = await fetch(path.replace(/^\//, '') + (q ? '?' + q : ''));
  const body = await res.json().catch(() => ({ status: 'error', error: `HTTP ${res.status}` }));
  if (body.status !== 'success') throw new Error(body.error || `HTTP ${res.status}`);
  return body;
}

/** The API's `warnings` in a box above a page's content, under `title`; null when none. */
export function warningsBox(warnings: string[] | undefined, id: string, title: string): HTMLElement | null {
  if (!warnings || !warnings.length) return null;
  return el(
    'div',
    { class: 'error', id },
    el('strong', {}, title),
    el('ul', {}, ...warnings.map((w) => el('li', {}, w))),
  );
}

/**
 * Warnings the targets API returns about discovery (kinds vigil does not run, providers whose
 * last attempt failed), shown above the target lists: a job whose discovery fails must not
 * read as one that found nothing.
 */
export function discoveryWarnings(warnings: string[] | undefined): HTMLElement | null {
  return warningsBox(warnings, 'discovery-warnings', 'Discovery is not finding every target: ');
}

/** Whether a discovery warning is about `job`. */
export function warnsAbout(w: string, job: string): boolean {
  return w.startsWith(`scrape job ${JSON.stringify(job)}:`);
}

/** What a caught error says, whatever was thrown. */
export function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** An attribute's value: absent when `undefined`, `null` or `false`; `on*` take listeners. */
type AttrValue = string | number | boolean | null | undefined | EventListener;

export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, AttrValue> = {},
  ...kids: (Node | string | null | undefined)[]
): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') e.addEventListener(k.slice(2), v);
    else if (k === 'class') e.className = String(v);
    // Target URLs come from relabeling, which anyone with config access controls: never let one
    // become a javascript: (or any non-web) link.
    else if (k === 'href' && !safeHref(String(v))) continue;
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const k of kids) if (k !== null && k !== undefined) e.append(k);
  return e;
}

export function labelChips(labels: Record<string, string>): HTMLElement {
  return el(
    'div',
    { class: 'labels' },
    ...Object.entries(labels)
      .sort()
      .map(([k, v]) => el('span', { class: 'label' }, `${k}="${v}"`)),
  );
}

export function ago(iso: string): string {
  const t = Date.parse(iso);
  if (!t || t < 0 || iso.startsWith('0001')) return 'never';
  const s = Math.max(0, (Date.now() - t) / 1000);
  if (s < 60) return `${s.toFixed(1)}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${Math.floor(s % 60)}s ago`;
  return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m ago`;
}
