#!/usr/bin/env node
import { runCli } from './commands';

// The `rps` bin: the operator's CLI over the manager's API (docs/remote-manager.md, "CLI").
void runCli(process.argv.slice(2), {
  env: process.env,
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
}).then((code) => {
  process.exitCode = code;
});
