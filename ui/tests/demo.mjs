// `vigil demo`'s dashboards in headless Chromium. Usage: node tests/demo.mjs <base> <shots> <uid> ...
// Each dashboard must draw every panel with data (none failed, none "No data"); a screenshot
// of each goes to <shots>/demo-<uid>.png, and of the targets page to <shots>/demo-targets.png.
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';

const [base, shots, ...uids] = process.argv.slice(2);
mkdirSync(shots, { recursive: true });
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox'],
});
const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
const errors = [];
page.on('pageerror', (e) => errors.push(String(e)));
const check = (cond, what) => {
  if (!cond) throw new Error(`FAILED: ${what}`);
  console.log(`ok: ${what}`);
};

for (const uid of uids) {
  await page.goto(`${base}/d/${uid}?from=now-5m&to=now`);
  await page.waitForFunction(
    () => {
      const ps = [...document.querySelectorAll('.dash-panel')];
      return ps.length > 0 && ps.every((p) => p.classList.contains('done'));
    },
    null,
    { timeout: 30000 },
  );
  const panels = await page.$$eval('.dash-panel', (ps) =>
    ps.map((p) => ({
      title: p.dataset.title,
      failed: p.classList.contains('failed'),
      empty: /No data/.test(p.textContent),
    })),
  );
  check(panels.length > 0, `${uid}: ${panels.length} panels`);
  const bad = panels
    .filter((p) => p.failed || p.empty)
    .map((p) => `${p.title}${p.failed ? ' failed' : ' has no data'}`);
  check(bad.length === 0, `${uid}: every panel drawn with data (${bad.join('; ')})`);
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
  await page.screenshot({ path: `${shots}/demo-${uid}.png`, fullPage: true });
}
await page.goto(`${base}/targets`);
await page.waitForSelector('main table');
await page.screenshot({ path: `${shots}/demo-targets.png`, fullPage: true });
check(errors.length === 0, `no page errors (${errors.join('; ')})`);
await browser.close();
console.log('all demo checks passed');
