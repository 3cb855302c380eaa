#!/usr/bin/env node
// Prints the score per file and the surviving mutants of Stryker's JSON
// reports (reports/mutation/<module>.json): node scripts/mutation-summary.js [module...]
const fs = require('node:fs');
const path = require('node:path');

const dir = path.join(__dirname, '..', 'reports', 'mutation');
const names = process.argv.slice(2);
const files = names.length
  ? names.map((n) => `${n}.json`)
  : fs.readdirSync(dir).filter((f) => f.endsWith('.json') && !f.endsWith('.incremental.json'));
const DETECTED = new Set(['Killed', 'Timeout']);
const UNDETECTED = new Set(['Survived', 'NoCoverage']);
for (const file of files) {
  const report = JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8'));
  let detected = 0;
  let undetected = 0;
  console.log(`## ${file.replace(/\.json$/, '')}`);
  for (const [name, entry] of Object.entries(report.files)) {
    const counts = {};
    for (const m of entry.mutants) counts[m.status] = (counts[m.status] ?? 0) + 1;
    const d = entry.mutants.filter((m) => DETECTED.has(m.status)).length;
    const u = entry.mutants.filter((m) => UNDETECTED.has(m.status)).length;
    detected += d;
    undetected += u;
    const score = d + u ? ((100 * d) / (d + u)).toFixed(1) : '-';
    console.log(`${name}: ${score}% ${JSON.stringify(counts)}`);
    for (const m of entry.mutants.filter((x) => UNDETECTED.has(x.status)))
      console.log(
        `  ${m.status} ${name}:${m.location.start.line} ${m.mutatorName} -> ${JSON.stringify(m.replacement ?? '').slice(0, 100)}`,
      );
  }
  const total = detected + undetected;
  console.log(`total: ${total ? ((100 * detected) / total).toFixed(1) : '-'}% (${detected}/${total})\n`);
}
