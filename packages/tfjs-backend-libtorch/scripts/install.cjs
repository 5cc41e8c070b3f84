#!/usr/bin/env node
// `npm install` step: builds the addon with node-gyp. Without libtorch (or a compiler) the build fails; the
// install then goes on with a warning, and medsynth falls back to the wasm backend (`medsynth doctor` says
// why). TFJS_LIBTORCH_REQUIRED=1 makes a failed build fail the install.
'use strict';
const { spawnSync } = require('node:child_process');

const result = spawnSync('node-gyp', ['rebuild'], { stdio: 'inherit', shell: process.platform === 'win32' });
if (result.status === 0) process.exit(0);
const why = result.error ? result.error.message : `node-gyp exited with code ${result.status}`;
process.stderr.write(
  `\ntfjs-backend-libtorch: the libtorch addon was not built (${why}).\n` +
    'TF.js will run on a slower backend. To build it: install libtorch (Debian: apt-get install libtorch-dev ' +
    'libopenblas0-pthread) or set LIBTORCH / LIBTORCH_USE_PYTORCH=1, then run ' +
    "'npm run build:addon -w tfjs-backend-libtorch'.\n",
);
process.exit(process.env.TFJS_LIBTORCH_REQUIRED === '1' ? 1 : 0);
