// Integration tests spawn real service processes from dist/, so make sure the
// build is current (tsc -b is incremental: a no-op when nothing changed).
const { execFileSync } = require('node:child_process');
const path = require('node:path');

module.exports = async function globalSetup() {
  const root = path.resolve(__dirname, '..');
  execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-b'], {
    cwd: root,
    stdio: 'inherit',
  });
};
