// Dashboards in headless Chromium. Usage: node tests/dashboards.mjs <base> <shots> <uid>=<panels> ...
// Each listed dashboard must load with exactly that many panels drawn and none failed; the
// built-in dashboards must show what the API returns; a template variable change re-queries.
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';

const [base, shots, ...expect] = process.argv.slice(2);
mkdirSync(shots, { recursive: true });
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox'],
});
const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
const errors = [];
page.on('console', (m) => {
  if (m.type() === 'error') errors.push(m.text());
});
page.on('pageerror', (e) => errors.push(String(e)));
const queries = [];
page.on('request', (r) => {
  if (r.url().includes('/api/v1/query')) queries.push(decodeURIComponent(r.url()));
});
const check = (cond, what) => {
  if (!cond) throw new Error(`FAILED: ${what}`);
  console.log(`ok: ${what}`);
};
const allDone = async () => {
  await page.waitForFunction(
    () => {
      const ps = [...document.querySelectorAll('.dash-panel')];
      return ps.length > 0 && ps.every((p) => p.classList.contains('done'));
    },
    null,
    { timeout: 30000 },
  );
};

await page.goto(`${base}/dashboards`);
await page.waitForSelector('main table a');
const listed = await page.$$eval('main table a', (as) => as.map((a) => a.getAttribute('href')));
for (const e of expect)
  check(
    listed.some((h) => h.startsWith(`d/${e.split('=')[0]}/`)),
    `/dashboards lists ${e.split('=')[0]}`,
  );
await page.screenshot({ path: `${shots}/dashboards.png` });

for (const e of expect) {
  const [uid, n] = e.split('=');
  await page.goto(`${base}/d/${uid}`);
  await allDone();
  const panels = await page.$$('.dash-panel');
  const failed = await page.$$eval('.dash-panel.failed', (ps) => ps.map((p) => p.dataset.title + ': ' + p.textContent));
  check(panels.length === parseInt(n, 10), `${uid}: ${panels.length} panels drawn (want ${n})`);
  check(failed.length === 0, `${uid}: no panel failed (${failed.join('; ')})`);
  // Stat panels with several series: each label stays in its own box (long ones wrap).
  const clash = await page.$$eval('.stat-wrap', (ws) =>
    ws.flatMap((w) => {
      const ls = [...w.querySelectorAll('.stat-label')];
      const rs = ls.map((l) => l.getBoundingClientRect());
      const bad = ls.filter((l) => l.scrollWidth > l.clientWidth + 1).map((l) => `overflows: ${l.textContent}`);
      for (let i = 0; i < rs.length; i++)
        for (let j = i + 1; j < rs.length; j++) {
          const [a, b] = [rs[i], rs[j]];
          if (a.left < b.right - 1 && b.left < a.right - 1 && a.top < b.bottom - 1 && b.top < a.bottom - 1)
            bad.push(`${ls[i].textContent} overlaps ${ls[j].textContent}`);
        }
      return bad;
    }),
  );
  check(clash.length === 0, `${uid}: stat labels apart (${clash.join('; ')})`);
  // Graphs fill their panel: plot and legend take the body's height (not a sliver of it).
  await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
  const short = await page.$$eval('.dash-panel .panel-body', (bs) =>
    bs.flatMap((b) => {
      const u = b.querySelector('.uplot');
      return u && u.offsetHeight < b.clientHeight - 24
        ? [`${b.parentElement.dataset.title}: ${u.offsetHeight} of ${b.clientHeight}px`]
        : [];
    }),
  );
  check(short.length === 0, `${uid}: graphs fill their panels (${short.join('; ')})`);
  await page.screenshot({ path: `${shots}/dashboard-${uid}.png`, fullPage: true });
}

// Heatmap panels: a native histogram's buckets and a classic histogram's `le` series, each
// one row per bucket (the target's four), with cells drawn.
await page.goto(`${base}/d/heatmaps?from=now-5m&to=now`);
await allDone();
const heat = await page.$$eval('.dash-panel .heatmap', (hs) =>
  hs.map((h) => [h.closest('.dash-panel').dataset.title, h.dataset.buckets, h.dataset.cells]),
);
check(
  heat.length === 2 && heat.every(([, b, c]) => b === '4' && parseInt(c, 10) > 0),
  `heatmap panels draw four buckets each (${JSON.stringify(heat)})`,
);

// Built in: a graph panel draws the series the API returns; a stat shows the API's value.
await page.goto(`${base}/d/vigil-self/vigil-itself?from=now-15m&to=now`);
await allDone();
const drawn = await page.$eval('.dash-panel[data-title="Head series"][data-type="timeseries"] .panel-body', (b) =>
  parseInt(b.dataset.series, 10),
);
const now = Date.now() / 1000;
const api = await (
  await fetch(
    `${base}/api/v1/query_range?` +
      new URLSearchParams({
        query: 'prometheus_tsdb_head_series',
        start: String(now - 900),
        end: String(now),
        step: '15',
      }),
  )
).json();
check(
  drawn === api.data.result.length && drawn > 0,
  `graph panel draws ${drawn} series, the API returns ${api.data.result.length}`,
);
check(
  (await page.$eval('select[aria-label="time range"]', (s) => s.value)) === 'now-15m',
  'the time range comes from the URL',
);
await page.screenshot({ path: `${shots}/dashboard-vigil-self.png`, fullPage: true });

await page.goto(`${base}/d/vigil-targets/targets-overview`);
await allDone();
const stat = await page.$$eval('.dash-panel[data-title="Up by job"] .stat', (ss) =>
  ss.map((s) => [s.querySelector('.stat-label')?.textContent, s.querySelector('.stat-value').textContent]),
);
const up = await (await fetch(`${base}/api/v1/query?` + new URLSearchParams({ query: 'sum by (job) (up)' }))).json();
const apiUp = Object.fromEntries(up.data.result.map((s) => [s.metric.job, String(parseFloat(s.value[1]))]));
check(
  stat.length === Object.keys(apiUp).length && stat.every(([job, v]) => apiUp[job] === v.trim()),
  `stat values equal the API's (${JSON.stringify(stat)} vs ${JSON.stringify(apiUp)})`,
);
const before = queries.length;
await page.selectOption('select[data-var="job"]', ['node']);
await allDone();
const after = queries.slice(before);
check(
  after.some((q) => q.includes('job=~"node"')),
  'changing the variable re-queries with it',
);
check(new URL(page.url()).searchParams.getAll('var-job').includes('node'), 'the variable is in the URL');
const rows = await page.$$eval('.dash-panel[data-title="Targets"] tbody tr', (rs) => rs.length);
check(rows === 1, `the table shows only the node job (${rows} rows)`);
await page.screenshot({ path: `${shots}/dashboard-targets.png`, fullPage: true });

check(errors.length === 0, `no console errors (${errors.join('; ')})`);

// Chained variables: the second variable's options follow the first's value.
const instOpts = async () => page.$$eval('select[data-var="instance"] option', (os) => os.map((o) => o.value));
const upBy = async (job) =>
  (
    await (await fetch(`${base}/api/v1/query?` + new URLSearchParams({ query: `up{job="${job}"}` }))).json()
  ).data.result.map((s) => s.metric.instance);
await page.goto(`${base}/d/chained`);
await allDone();
const nodeInst = await upBy('node'),
  vigilInst = await upBy('vigil');
check(
  JSON.stringify(await instOpts()) === JSON.stringify(nodeInst),
  `instance options for job=node are the node job's (${await instOpts()})`,
);
await page.selectOption('select[data-var="job"]', ['vigil']);
await page.waitForFunction(
  (want) => [...document.querySelectorAll('select[data-var="instance"] option')].map((o) => o.value).join() === want,
  vigilInst.join(),
  { timeout: 10000 },
);
await allDone();
check(
  new URL(page.url()).searchParams.get('var-instance') === vigilInst[0],
  'choosing another job re-chooses the instance, in the URL too',
);
check(
  (await page.$eval('.dash-panel[data-title="up"] .stat-value', (e) => e.textContent)).trim() === '1',
  'the panel queries the new instance',
);

// A failing query shows its error in its panel, and the rest of the dashboard still draws.
await page.goto(`${base}/d/broken`);
await allDone();
const failed = await page.$eval('.dash-panel.failed [role=alert]', (e) => e.textContent);
check(/parse error/.test(failed), `the failing panel shows the error (${failed})`);
check(
  (await page.$eval('.dash-panel[data-title="good"] .stat-value', (e) => e.textContent)) === '2',
  'the other panel still draws',
);
errors.splice(0, errors.length, ...errors.filter((e) => !/status of 400/.test(e)));
check(errors.length === 0, `no other console errors (${errors.join('; ')})`);
await browser.close();
console.log('all dashboard checks passed');
