#!/usr/bin/env node
// Finds libtorch for node-gyp (binding.gyp calls this with one of: include, libdirs, libs, defines, ldflags).
// Order: LIBTORCH=<libtorch tree>; LIBTORCH_USE_PYTORCH=1 (the libtorch inside python3's torch package);
// otherwise Debian's libtorch-dev (/usr/include/torch, libtorch.so in the system library path).
'use strict';
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

function fail(message) {
  process.stderr.write(`tfjs-backend-libtorch: ${message}\n`);
  process.exit(1);
}

function fromTree(root, how) {
  const lib = path.join(root, 'lib');
  if (!fs.existsSync(path.join(root, 'include', 'torch'))) fail(`${how}=${root} has no include/torch folder`);
  const has = (name) => fs.existsSync(path.join(lib, `lib${name}.so`));
  if (!has('torch') && !has('torch_cpu')) fail(`${how}=${root} has no lib/libtorch.so`);
  const libs = ['torch', 'torch_cpu', 'c10', 'torch_cuda', 'c10_cuda'].filter(has);
  return {
    include: [path.join(root, 'include'), path.join(root, 'include', 'torch', 'csrc', 'api', 'include')],
    libdirs: [lib],
    libs,
    rpath: [lib],
  };
}

function pythonTorch() {
  const python = process.env.PYTHON_FOR_LIBTORCH || 'python3';
  let out;
  try {
    out = execFileSync(
      python,
      [
        '-c',
        'import os, torch; print(os.path.dirname(torch.__file__)); print(int(torch._C._GLIBCXX_USE_CXX11_ABI))',
      ],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
    );
  } catch (error) {
    fail(
      `LIBTORCH_USE_PYTORCH=1 but '${python} -c "import torch"' failed: ${String(error.stderr || error.message).trim()}`,
    );
  }
  const [root, abi] = out.trim().split('\n');
  const found = fromTree(root, 'torch package');
  return { ...found, abi: Number(abi) };
}

function debian() {
  const include = '/usr/include';
  if (!fs.existsSync(path.join(include, 'torch', 'csrc', 'api', 'include'))) {
    fail(
      "libtorch not found. Install Debian's libtorch-dev (apt-get install libtorch-dev), or set LIBTORCH to a " +
        'libtorch folder, or LIBTORCH_USE_PYTORCH=1 to use the libtorch inside an installed PyTorch.',
    );
  }
  return {
    include: [include, path.join(include, 'torch', 'csrc', 'api', 'include')],
    libdirs: [],
    libs: ['torch', 'torch_cpu', 'c10'],
    rpath: [],
  };
}

function resolve() {
  if (process.env.LIBTORCH)
    return { ...fromTree(path.resolve(process.env.LIBTORCH), 'LIBTORCH'), source: 'LIBTORCH' };
  if (process.env.LIBTORCH_USE_PYTORCH === '1') return { ...pythonTorch(), source: 'pytorch' };
  return { ...debian(), source: 'debian' };
}

const config = resolve();
const abi = process.env.LIBTORCH_CXX11_ABI ?? config.abi ?? 1;
const what = process.argv[2];
const outputs = {
  include: config.include,
  libdirs: config.libdirs.map((d) => `-L${d}`),
  libs: config.libs.map((l) => `-l${l}`),
  ldflags: [...config.rpath.map((d) => `-Wl,-rpath,${d}`), '-Wl,--no-as-needed'],
  defines: [`_GLIBCXX_USE_CXX11_ABI=${abi}`],
  json: [JSON.stringify(config)],
};
if (!(what in outputs)) fail(`usage: libtorch-config.cjs ${Object.keys(outputs).join('|')}`);
process.stdout.write(outputs[what].join(' ') + '\n');
