// Unit tests of the renderer's pure helpers (units, intervals, variables), bundled on the fly.
import * as esbuild from 'esbuild';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const out = join(mkdtempSync(join(tmpdir(), 'vigil-ui-')), 'format.mjs');
await esbuild.build({ entryPoints: ['src/format.ts'], bundle: true, format: 'esm', platform: 'node', outfile: out });
const f = await import(out);
let n = 0;
const eq = (got, want, what) => {
  if (got !== want) throw new Error(`FAILED ${what}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
  n++;
};

eq(f.formatUnit(1, 'percentunit'), '100%', 'percentunit of 1');
eq(f.formatUnit(0.256, 'percentunit'), '25.6%', 'percentunit fraction');
eq(f.formatUnit(100, undefined), '100', 'short keeps integer zeros');
eq(f.formatUnit(2.5, 'none'), '2.5', 'trailing zero dropped');
eq(f.formatUnit(1536, 'bytes'), '1.5 KiB', 'bytes are IEC');
eq(f.formatUnit(1500, 'decbytes'), '1.5 kB', 'decbytes are SI');
eq(f.formatUnit(2500000, 'Bps'), '2.5 MB/s', 'Bps: bytes per second, SI');
eq(f.formatUnit(1536, 'binBps'), '1.5 KiB/s', 'binBps: bytes per second, IEC');
eq(f.formatUnit(800, 'bps'), '800 b/s', 'bps: bits per second');
eq(f.formatUnit(1234567, 'short'), '1.23 Mil', 'short scales');
eq(f.formatUnit(0.25, 's'), '250 ms', 'seconds below one');
eq(f.formatUnit(90, 's'), '1.5 min', 'seconds above a minute');
eq(f.formatUnit(3725, 'dtdurations'), '1 hour, 2 min', 'dtdurations');
eq(f.formatUnit(12, 'reqps'), '12 req/s', 'reqps');
eq(f.formatUnit(3.14159, 'short', 2), '3.14', 'explicit decimals');
eq(f.formatUnit(null, 'short'), 'N/A', 'no value');
eq(f.roundInterval(1000), 1000, 'round 1s');
eq(f.roundInterval(14000), 15000, 'round to 15s');
eq(f.roundInterval(50000), 60000, 'round to 1m');
eq(f.durationText(60), '1m', 'duration 60s');
eq(f.durationText(90), '90s', 'duration 90s');
const vars = { job: ['api'], multi: ['a', 'b'] };
const b = { __rate_interval: '1m', __range: '1h' };
eq(
  f.interpolate('rate(x{job="$job"}[$__rate_interval])', vars, b),
  'rate(x{job="api"}[1m])',
  '$var and $__rate_interval',
);
eq(f.interpolate('x{job=~"${multi}"}[$__range]', vars, b), 'x{job=~"(a|b)"}[1h]', '${var} multi-value');
eq(f.interpolate('x{job="[[job]]"}', vars, b), 'x{job="api"}', '[[var]]');
eq(f.interpolate('x{a="$unknown"}', vars, b), 'x{a="$unknown"}', 'unknown variables stay');
eq(f.parseDuration('1h'), 3600, 'duration 1h');
eq(f.parseDuration('1d'), 86400, 'duration 1d (refresh=1d)');
eq(f.parseDuration('1h30m'), 5400, 'duration 1h30m');
eq(Number.isNaN(f.parseDuration('abc')), true, 'not a duration');
eq(f.safeHref('http://10.0.0.1:9100/metrics'), true, 'http link');
eq(f.safeHref('https://x/metrics?a=b'), true, 'https link');
eq(f.safeHref('d/abc/slug'), true, 'relative link');
eq(f.safeHref('javascript:alert(1)'), false, 'javascript: link refused');
eq(f.safeHref('java\tscript:alert(1)'), false, 'javascript: hidden by a tab refused');
eq(f.safeHref(' JAVASCRIPT:alert(1)'), false, 'upper-case javascript: refused');
eq(f.safeHref('data:text/html,x'), false, 'data: link refused');
eq(f.metricText({ __name__: 'up', job: 'a' }), 'up{job="a"}', 'classic series');
eq(
  f.metricText({ __name__: 'http.requests', 'k8s.pod': 'web-1', code: '200' }),
  '{"http.requests", code="200", "k8s.pod"="web-1"}',
  'UTF-8 names quoted, the metric name inside the braces',
);
eq(f.metricText({ __name__: 'my.metric' }), '{"my.metric"}', 'UTF-8 name alone');
eq(f.metricSelectorText('my.metric'), '{"my.metric"}', 'UTF-8 metric completes as a selector');
eq(f.metricSelectorText('up'), 'up', 'classic metric completes as it is');
eq(f.labelNameText('k8s.pod'), '"k8s.pod"', 'UTF-8 label name quoted');
console.log(`all ${n} unit checks passed`);
