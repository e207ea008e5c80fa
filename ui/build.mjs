// Bundles the UI into dist/: app.js (TypeScript and uPlot, minified), app.css, index.html.
// Run by crates/web/build.rs when dist/ is missing or older than the sources.
import * as esbuild from 'esbuild';
import { mkdirSync, copyFileSync, readFileSync, writeFileSync } from 'node:fs';

mkdirSync('dist', { recursive: true });
await esbuild.build({
  entryPoints: ['src/main.ts'],
  bundle: true,
  minify: true,
  format: 'iife',
  target: ['es2020'],
  outfile: 'dist/app.js',
  legalComments: 'none',
});
const css = readFileSync('node_modules/uplot/dist/uPlot.min.css', 'utf8') + readFileSync('src/style.css', 'utf8');
writeFileSync('dist/app.css', css);
copyFileSync('src/index.html', 'dist/index.html');
