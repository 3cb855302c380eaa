#!/usr/bin/env node
// Assembles WebAssembly text (.wat) into the .wasm beside it, with wabt
// (a dev dependency: the binary is committed, so installs and images need no
// assembler). `node scripts/assemble-wasm.js <file.wat>...`, or `--check`
// first to only compare, exiting 1 when a committed .wasm differs from its
// source. Used by `npm run build:wasm -w @rps/rps-gateway`; the unit test
// beside the loader calls assemble() and compares too.
const fs = require('node:fs');

/** The binary for the text of `watFile`: deterministic, no names section. */
async function assemble(watFile) {
  const wabt = await require('wabt')();
  const mod = wabt.parseWat(watFile, fs.readFileSync(watFile, 'utf8'), { simd: true });
  try {
    mod.validate();
    return Buffer.from(mod.toBinary({ log: false, write_debug_names: false }).buffer);
  } finally {
    mod.destroy();
  }
}

async function main(argv) {
  const check = argv[0] === '--check';
  const files = check ? argv.slice(1) : argv;
  if (files.length === 0 || files.some((f) => !f.endsWith('.wat'))) {
    console.error('usage: assemble-wasm.js [--check] <file.wat>...');
    return 2;
  }
  let stale = 0;
  for (const wat of files) {
    const wasm = wat.replace(/\.wat$/, '.wasm');
    const binary = await assemble(wat);
    const current = fs.existsSync(wasm) ? fs.readFileSync(wasm) : null;
    if (current && current.equals(binary)) {
      console.log(`${wasm}: up to date (${binary.length} bytes)`);
    } else if (check) {
      console.error(`${wasm}: differs from ${wat}; run npm run build:wasm -w @rps/rps-gateway`);
      stale++;
    } else {
      fs.writeFileSync(wasm, binary);
      console.log(`${wasm}: written (${binary.length} bytes)`);
    }
  }
  return stale > 0 ? 1 : 0;
}

module.exports = { assemble };

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err) => {
      console.error(err instanceof Error ? err.message : err);
      process.exit(1);
    },
  );
}
