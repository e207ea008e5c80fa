// Bench helper (run by `cargo run -p vigil-bench --bin ui_weight`): loads one query page per server in headless Chromium and reports the bytes transferred and
// the time until the chart is drawn. Usage: node measure.mjs <name>=<url> ... (each URL the
// full page URL with the query; the chart selector is chosen by name).
import { chromium } from 'playwright-core';

const selectors = { vigil: '.chart canvas', prometheus: '.graph_area svg path' };
// A dashboard is drawn when every panel is.
const dashboardDrawn = () => {
  const ps = [...document.querySelectorAll('.dash-panel')];
  return ps.length > 0 && ps.every((p) => p.classList.contains('done'));
};
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox'],
});
const out = {};
for (const arg of process.argv.slice(2)) {
  const [name, url] = [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)];
  const runs = [];
  for (let i = 0; i < 5; i++) {
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await ctx.newPage();
    let bytes = 0;
    const pending = [];
    page.on('requestfinished', (req) =>
      pending.push(
        req
          .sizes()
          .then((z) => {
            bytes += z.responseBodySize + z.responseHeadersSize;
          })
          .catch(() => {}),
      ),
    );
    const t0 = Date.now();
    await page.goto(url);
    if (name.startsWith('dashboard')) await page.waitForFunction(dashboardDrawn, null, { timeout: 30000, polling: 10 });
    else await page.waitForSelector(selectors[name], { timeout: 30000 });
    const ms = Date.now() - t0;
    // A panel that failed also counts as done: a time for an errored dashboard means nothing.
    const failed = await page.$$eval('.dash-panel.failed', (ps) =>
      ps.map((p) => `${p.dataset.title}: ${p.textContent}`),
    );
    if (failed.length) throw new Error(`${name}: panels failed: ${failed.join('; ')}`);
    await page.waitForLoadState('networkidle');
    await Promise.all(pending);
    runs.push({ ms, bytes });
    await ctx.close();
  }
  runs.sort((a, b) => a.ms - b.ms);
  out[name] = { ms: runs[2].ms, bytes: runs[2].bytes };
}
console.log(JSON.stringify(out));
await browser.close();
