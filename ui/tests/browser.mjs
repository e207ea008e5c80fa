// Browser test of vigil's UI in headless Chromium (Debian's, driven by playwright-core).
// Usage: node tests/browser.mjs <vigil base URL> <screenshot dir>
// Checks: the targets page lists the targets with their health; a query typed into the graph
// page draws a chart whose series count matches the API; completion offers a metric; the URL
// reproduces the view; the service-discovery page explains a dropped target; jobs that discover
// nothing say why (an unsupported kind, a file that does not parse); no console errors.
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';

const [base, shots, prefixed] = process.argv.slice(2);
mkdirSync(shots, { recursive: true });
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox'],
});
const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
const errors = [];
page.on('console', (m) => {
  if (m.type() === 'error') errors.push(m.text());
});
page.on('pageerror', (e) => errors.push(String(e)));
const check = (cond, what) => {
  if (!cond) throw new Error(`FAILED: ${what}`);
  console.log(`ok: ${what}`);
};

// Targets.
await page.goto(`${base}/targets`);
await page.waitForSelector('tr[data-health="up"]', { timeout: 20000 });
const pools = await page.$$eval('details.pool summary h2', (hs) => hs.map((h) => h.textContent));
check(pools.includes('node'), `targets page lists the node pool (${pools})`);
const nodeCount = await page.$$eval(
  'details.pool summary',
  (ss) => ss.find((s) => s.querySelector('h2').textContent === 'node').querySelector('.count').textContent,
);
check(/1\/1 up/.test(nodeCount), `node pool counts 1/1 up (${nodeCount})`);
await page.screenshot({ path: `${shots}/targets.png`, fullPage: true });
// Jobs that find nothing are listed too, with why: a discovery kind vigil does not run, a file
// that does not parse (named), and the reasons above the list.
const poolText = (name) =>
  page.$eval(`details.pool[data-pool="${name}"]`, (d) => d.textContent).catch(() => '(missing)');
const consul = await poolText('consul');
check(
  /0 targets/.test(consul) && /consul_sd_configs is not supported by vigil/.test(consul),
  `the consul job says why it has no targets (${consul})`,
);
const broken = await poolText('broken-files');
check(
  /file_sd_configs\[0\]/.test(broken) && /broken\.json/.test(broken),
  `the broken file's job names the file (${broken})`,
);
check((await page.$('#discovery-warnings')) !== null, 'the targets page shows discovery warnings above the list');
await page.selectOption('select[aria-label=health]', 'down');
const downRows = await page.$$('tr[data-health="up"]');
check(downRows.length === 0, 'health filter hides up targets');

// Graph: typing a query, completion, chart.
await page.goto(`${base}/graph`);
const ta = await page.waitForSelector('textarea[aria-label=expression]');
await page.waitForTimeout(500);
// Functions come from the engine's table (served in the page), including ones a hand-kept
// list once missed.
await ta.type('ts_of_ma');
await page.waitForSelector('.complete div', { timeout: 5000 });
const fns = await page.$$eval('.complete div', (ds) => ds.map((d) => d.firstChild.textContent));
check(fns.includes('ts_of_max_over_time'), `completion offers ts_of_max_over_time (${fns.slice(0, 5)})`);
await ta.fill('');
await page.keyboard.press('Escape');
await ta.type('node_cpu_seconds_t');
await page.waitForSelector('.complete div', { timeout: 5000 });
const offered = await page.$$eval('.complete div', (ds) => ds.map((d) => d.firstChild.textContent));
check(offered.includes('node_cpu_seconds_total'), `completion offers node_cpu_seconds_total (${offered.slice(0, 5)})`);
await page.keyboard.press('Tab');
check((await ta.inputValue()) === 'node_cpu_seconds_total', 'completion inserts the metric');
await page.click('.tabs button:has-text("Graph")');
await page.waitForSelector('.chart[data-series]', { timeout: 20000 });
const drawn = parseInt(await page.$eval('.chart', (c) => c.dataset.series), 10);
const url = page.url();
const u = new URL(url);
check(
  u.searchParams.get('g0.expr') === 'node_cpu_seconds_total' && u.searchParams.get('g0.tab') === '0',
  `the URL holds the panel (${u.search})`,
);
const now = Date.now() / 1000;
const api = await (
  await fetch(
    `${base}/api/v1/query_range?` +
      new URLSearchParams({ query: 'node_cpu_seconds_total', start: String(now - 3600), end: String(now), step: '14' }),
  )
).json();
check(
  drawn === api.data.result.length && drawn > 0,
  `chart draws ${drawn} series, the API returns ${api.data.result.length}`,
);
check((await page.$('.chart canvas')) !== null, 'uPlot canvas present');

// Axis labels are readable in both themes: the colour they are drawn in (the theme's --muted,
// found on the canvas itself) against the panel behind the chart, by WCAG's contrast ratio
// (4.5:1 for normal text), computed from the rendered styles.
const axisContrast = () =>
  page.evaluate(() => {
    const rgb = (c) => {
      const d = document.createElement('div');
      d.style.color = c;
      document.body.append(d);
      const m = getComputedStyle(d)
        .color.match(/\d+(\.\d+)?/g)
        .map(Number);
      d.remove();
      return m.slice(0, 3);
    };
    const lum = ([r, g, b]) => {
      const f = (x) => {
        x /= 255;
        return x <= 0.03928 ? x / 12.92 : ((x + 0.055) / 1.055) ** 2.4;
      };
      return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
    };
    const canvas = document.querySelector('.chart canvas');
    let bgEl = canvas,
      bg = 'rgba(0, 0, 0, 0)';
    while (bgEl && /rgba\(0, 0, 0, 0\)|transparent/.test(bg)) {
      bg = getComputedStyle(bgEl).backgroundColor;
      bgEl = bgEl.parentElement;
    }
    const fg = rgb(getComputedStyle(document.documentElement).getPropertyValue('--muted').trim());
    const back = rgb(bg);
    const [hi, lo] = [lum(fg), lum(back)].sort((a, b) => b - a);
    // Pixels drawn in exactly the label colour: the labels are in it, not in a fallback.
    const px = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
    let n = 0;
    for (let i = 0; i < px.length; i += 4)
      if (px[i] === fg[0] && px[i + 1] === fg[1] && px[i + 2] === fg[2] && px[i + 3] === 255) n++;
    return { ratio: (hi + 0.05) / (lo + 0.05), pixels: n, theme: document.documentElement.dataset.theme };
  });
for (let i = 0; i < 2; i++) {
  const c = await axisContrast();
  check(
    c.ratio >= 4.5 && c.pixels >= 20,
    `${c.theme} theme: axis labels drawn in the theme's colour (${c.pixels} px) at contrast ${c.ratio.toFixed(2)}:1`,
  );
  await page.click('#theme');
  await page.waitForTimeout(200);
}
await page.screenshot({ path: `${shots}/graph.png`, fullPage: true });

// The link reproduces the view.
const page2 = await browser.newPage({ viewport: { width: 1280, height: 900 } });
await page2.goto(url);
await page2.waitForSelector('.chart[data-series]', { timeout: 20000 });
check(
  (await page2.$eval('textarea[aria-label=expression]', (t) => t.value)) === 'node_cpu_seconds_total',
  'link restores the expression',
);
check(parseInt(await page2.$eval('.chart', (c) => c.dataset.series), 10) === drawn, 'link restores the chart');
await page2.close();

// The time-range picker: a longer range, then back by one range, then back to now; each
// change queries again (checked on the request itself: the data is a minute old, so two hours
// back there is nothing to draw) and lands in the URL.
const params = () => new URL(page.url()).searchParams;
const rangeQuery = async (click) => {
  const [resp] = await Promise.all([
    page.waitForResponse((r) => r.url().includes('/api/v1/query_range'), { timeout: 20000 }),
    page.click(click),
  ]);
  const q = new URL(resp.url()).searchParams;
  await page.waitForSelector('.result .chart[data-series], .result .empty', { timeout: 20000 });
  return { start: Number(q.get('start')), end: Number(q.get('end')) };
};
let q = await rangeQuery('button[aria-label="longer range"]');
check(
  params().get('g0.range_input') === '2h' && Math.abs(q.end - q.start - 7200) < 1,
  `+ lengthens the range to 2h (${params().get('g0.range_input')}, queried ${q.end - q.start}s)`,
);
q = await rangeQuery('button[aria-label="earlier"]');
const endAt = Date.parse(params().get('g0.end_input') || '');
check(
  Math.abs(endAt - (Date.now() - 2 * 3600e3)) < 120e3 && Math.abs(q.end * 1000 - endAt) < 1000,
  `◀ moves the end back by the range (${params().get('g0.end_input')}, queried up to ${new Date(q.end * 1000).toISOString()})`,
);
q = await rangeQuery('button[aria-label="end now"]');
check(
  !params().has('g0.end_input') && Math.abs(q.end * 1000 - Date.now()) < 60e3,
  'now clears the end and queries up to now',
);

// Table view and an error shown clearly (the browser logs the deliberate 400 itself).
check(errors.length === 0, `no console errors so far (${errors.join('; ')})`);
await page.goto(`${base}/graph?g0.expr=${encodeURIComponent('sum(rate(')}&g0.tab=1`);
await page.waitForSelector('[role=alert]', { timeout: 10000 });
const err = await page.$eval('[role=alert]', (e) => e.textContent);
check(/parse error/.test(err), `a bad query shows the parse error (${err})`);
errors.splice(0, errors.length, ...errors.filter((e) => !/status of 400/.test(e)));

// Native histograms: the table lists a histogram's count, sum and buckets; the graph draws a
// heatmap per histogram series, one row per bucket.
await page.goto(`${base}/graph?g0.expr=req_seconds&g0.tab=1`);
await page.waitForSelector('.histogram .buckets', { timeout: 20000 });
const hist = await page.$eval('.histogram', (h) => ({
  head: h.firstChild.textContent,
  rows: [...h.querySelectorAll(':scope table.buckets > tbody > tr')].map((r) => [...r.cells].map((c) => c.textContent)),
}));
// Its buckets' counts add up to its count, and the last bucket reaches +Inf.
const total = hist.rows.reduce((a, r) => a + Number(r[1]), 0);
check(
  /^count: \d+, sum: [\d.]+$/.test(hist.head) &&
    hist.rows.length === 4 &&
    `count: ${total},` === hist.head.split(' sum')[0] &&
    /, \+Inf[\])]$/.test(hist.rows[3][0]),
  `the table shows a histogram (${JSON.stringify(hist)})`,
);
await page.goto(`${base}/graph?g0.expr=${encodeURIComponent('rate(req_seconds[30s])')}&g0.tab=0&g0.range_input=5m`);
await page.waitForSelector('.heatmap[data-cells]', { timeout: 20000 });
const heat = await page.$$eval('.heatmap', (hs) => hs.map((h) => [h.dataset.buckets, parseInt(h.dataset.cells, 10)]));
check(
  heat.length === 1 && heat[0][0] === '4' && heat[0][1] > 0,
  `the graph draws a heatmap of the histogram's four buckets (${JSON.stringify(heat)})`,
);
await page.screenshot({ path: `${shots}/heatmap.png`, fullPage: true });
check(errors.length === 0, `no console errors on histograms (${errors.join('; ')})`);

// Service discovery explains a dropped target.
await page.goto(`${base}/service-discovery`);
await page.waitForSelector('tr.dropped', { timeout: 10000 });
await page.click('tr.dropped button');
await page.waitForSelector('tr.dropped-by', { timeout: 10000 });
const rule = await page.$eval('tr.dropped-by code', (c) => c.textContent);
check(/action: drop/.test(rule), `the dropping rule is shown (${rule})`);
await page.screenshot({ path: `${shots}/service-discovery.png`, fullPage: true });
const sdConsul = await poolText('consul');
check(
  /nothing discovered/.test(sdConsul) && /not supported by vigil/.test(sdConsul),
  `service discovery says why the consul job found nothing (${sdConsul})`,
);

// The other pages render without errors; dark theme and phone width.
for (const p of ['config', 'flags', 'status', 'tsdb-status', 'alerts', 'rules']) {
  await page.goto(`${base}/${p}`);
  await page.waitForSelector('main h1');
  await page.waitForTimeout(200);
  await page.screenshot({ path: `${shots}/${p}.png`, fullPage: true });
}
// The TSDB status page shows the head's time bounds as times, not bare epoch milliseconds.
await page.goto(`${base}/tsdb-status`);
await page.waitForSelector('main table th');
const minTime = await page.$$eval(
  'main table tr',
  (rs) => rs.map((r) => r.textContent).find((t) => t.startsWith('minTime')) || '',
);
check(
  /^minTime\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC \(\d+\)$/.test(minTime),
  `TSDB status shows the head's minTime as a time (${minTime})`,
);
// The status page lists the remote write queue (its receiver is unreachable: the error shows).
await page.goto(`${base}/status`);
await page.waitForSelector('#remote-write tr.queue');
const rwUrl = await page.$eval('#remote-write tr.queue td.url', (c) => c.textContent);
check(/127\.0\.0\.1:1\/api\/v1\/write/.test(rwUrl), `status page lists the remote write queue (${rwUrl})`);
const config = await (await page.goto(`${base}/config`), page.waitForSelector('#config-yaml'));
check((await config.textContent()).includes('job_name: node'), 'config page shows the loaded YAML');
check(!(await config.textContent()).includes('#'), 'config page shows the config re-serialised, without its comments');
// Rules and alerts: the group with both rules healthy, the alert firing with its rendered
// annotation, and the state filter. Rules evaluate every second; pages are re-read until then.
const until = async (path, selector, what) => {
  for (let i = 0; i < 30; i++) {
    await page.goto(`${base}/${path}`);
    await page.waitForSelector('main h1');
    if (await page.$(selector)) return;
    await page.waitForTimeout(500);
  }
  throw new Error(`FAILED: ${what}`);
};
await until(
  'rules',
  '.rule-group[data-group="ui"] tr.rule[data-rule="NodeUp"].health-ok',
  'rules page shows the evaluated rules',
);
const ruleRows = await page.$$eval('.rule-group[data-group="ui"] tr.rule', (rs) =>
  rs.map((r) => r.dataset.rule + ':' + r.className),
);
check(
  ruleRows.length === 2 && ruleRows.every((r) => /health-ok/.test(r)),
  `rules page lists both rules, healthy (${ruleRows})`,
);
await page.screenshot({ path: `${shots}/rules.png`, fullPage: true });
await until('alerts', 'details.alert-rule.state-firing tr.alert', 'alerts page shows the firing alert');
const alertText = await page.$eval('details.alert-rule.state-firing tr.alert', (r) => r.textContent);
check(
  /is up/.test(alertText) && /severity="info"/.test(alertText),
  `alert row shows labels and the rendered annotation (${alertText})`,
);
await page.screenshot({ path: `${shots}/alerts.png`, fullPage: true });
await page.click('#show-firing');
check((await page.$$('details.alert-rule.state-firing')).length === 0, 'state filter hides firing rules');
await page.click('#theme');
check((await page.evaluate(() => document.documentElement.dataset.theme)) !== undefined, 'theme toggles');
await page.setViewportSize({ width: 390, height: 800 });
await page.goto(`${base}/targets`);
await page.waitForSelector('tr[data-health="up"]');
await page.screenshot({ path: `${shots}/targets-phone.png`, fullPage: true });

// Under a route prefix (--web.external-url with a path): pages, assets and API calls all live
// below it.
if (prefixed) {
  await page.setViewportSize({ width: 1280, height: 900 });
  await page.goto(`${prefixed}/targets`);
  await page.waitForSelector('tr[data-health="up"]', { timeout: 20000 });
  check(true, 'targets page works under the route prefix');
  await page.goto(`${prefixed}/graph?g0.expr=up&g0.tab=1`);
  await page.waitForSelector('table.series-table', { timeout: 10000 });
  check((await page.$$('table.series-table tr')).length >= 1, 'queries work under the route prefix');
  await page.click('#nav a[href="flags"]');
  await page.waitForSelector('main h1');
  check(page.url() === `${prefixed}/flags`, `nav links stay under the prefix (${page.url()})`);
}

check(errors.length === 0, `no console errors (${errors.join('; ')})`);
await browser.close();
console.log('all browser checks passed');
