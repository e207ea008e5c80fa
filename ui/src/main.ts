// The single-page app: a small router over the server-side paths, and the theme switch.
import { targetsPage } from './targets';
import { graphPage } from './graph';
import { sdPage } from './sd';
import { configPage, flagsPage, statusPage, tsdbPage } from './status';
import { rulesPage, alertsPage } from './rules';
import { el, errorText } from './api';
import { dashboardsPage, dashboardPage } from './dashboard';
import { redrawCharts } from './theme';

const routes: Record<string, (root: HTMLElement) => Promise<void>> = {
  '/targets': targetsPage,
  '/graph': graphPage,
  '/query': graphPage,
  '/service-discovery': sdPage,
  '/config': configPage,
  '/flags': flagsPage,
  '/status': statusPage,
  '/tsdb-status': tsdbPage,
  '/dashboards': dashboardsPage,
  '/alerts': alertsPage,
  '/rules': rulesPage,
};

async function start() {
  const root = document.getElementById('app')!;
  // The page's path below the route prefix (the <base> the server sets).
  const base = new URL(document.baseURI).pathname.replace(/\/+$/, '');
  const path = ('/' + location.pathname.slice(base.length).replace(/^\/+|\/+$/g, '')).replace(/^\/$/, '/graph');
  document.querySelectorAll('#nav a').forEach((a) => {
    if ((a as HTMLAnchorElement).pathname === location.pathname) a.classList.add('active');
  });
  document.getElementById('theme')!.addEventListener('click', () => {
    const t = document.documentElement.dataset.theme === 'dark' ? 'light' : 'dark';
    document.documentElement.dataset.theme = t;
    localStorage.setItem('vigil-theme', t);
    redrawCharts();
  });
  const dash = /^\/d\/([^/]+)/.exec(path);
  const page = dash ? (r: HTMLElement) => dashboardPage(r, decodeURIComponent(dash[1])) : routes[path] || graphPage;
  const pageTitle = document.querySelector('meta[name=page-title]')?.getAttribute('content') || 'vigil';
  document.title = `${pageTitle} · ${path.slice(1) || 'graph'}`;
  try {
    await page(root);
  } catch (e) {
    root.append(el('div', { class: 'error', role: 'alert' }, `Could not load this page: ${errorText(e)}`));
  }
}

start();
