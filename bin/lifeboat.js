#!/usr/bin/env node
// The `lifeboat` command: everything lives in the compiled CLI (`npm run build` makes dist/).
import "../dist/cli/main.js";
