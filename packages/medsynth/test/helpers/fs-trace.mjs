// A preload (`node --import <this file>`) for hostile-input tests of the CLI: it records every path the process
// opens, reads, lists or writes, and can make writes fail like a full disk, without touching the code under test.
//
// - MEDSYNTH_FS_TRACE=<file>: one JSON line per call, {"op": "read" | "write", "fn": "readFile", "path": "/abs"}.
// - MEDSYNTH_FS_FAULT=<CODE>:<regex>: opening a path that matches for writing (open 'w'/'a', writeFile,
//   appendFile, createWriteStream, mkdir) throws an errno error with that code (ENOSPC, EACCES, EROFS…),
//   as the kernel would; MEDSYNTH_FS_FAULT_AFTER=<n> lets the first n matching writes through.
// The patched functions are the `node:fs` and `node:fs/promises` exports, synced into ES-module imports with
// `syncBuiltinESMExports`, so `import { readFile } from 'node:fs/promises'` in the code sees them too.
import fs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { resolve } from 'node:path';

const traceFile = process.env.MEDSYNTH_FS_TRACE;
const fault = process.env.MEDSYNTH_FS_FAULT;
const [faultCode, faultPattern] = fault
  ? [fault.slice(0, fault.indexOf(':')), fault.slice(fault.indexOf(':') + 1)]
  : [];
const faultRe = faultPattern ? new RegExp(faultPattern) : undefined;
let faultAllowed = Number(process.env.MEDSYNTH_FS_FAULT_AFTER ?? 0);
// The trace is written through one descriptor opened before anything is patched (no recursion).
const traceFd = traceFile ? fs.openSync(traceFile, 'a') : undefined;

function pathOf(p) {
  if (typeof p === 'string') return resolve(p);
  if (p instanceof URL) return p.pathname;
  if (Buffer.isBuffer(p)) return resolve(p.toString());
  return undefined; // a file descriptor or handle
}

function record(op, fn, p) {
  const path = pathOf(p);
  if (path === undefined) return;
  if (traceFd !== undefined) fs.writeSync(traceFd, `${JSON.stringify({ op, fn, path })}\n`);
  if (op === 'write' && CREATES.has(fn) && faultRe && faultRe.test(path) && faultAllowed-- <= 0) {
    const e = new Error(`${faultCode}: injected failure, ${fn} '${path}'`);
    e.code = faultCode;
    e.errno = -28;
    e.syscall = fn;
    e.path = path;
    throw e;
  }
}

/** Calls that take space on the disk (renames and removals never fail with ENOSPC). */
const CREATES = new Set([
  'open',
  'openSync',
  'writeFile',
  'writeFileSync',
  'appendFile',
  'mkdir',
  'copyFile',
  'createWriteStream',
]);

const writing = (flags) => typeof flags === 'string' && /[wa+]/.test(flags);

function wrap(target, name, classify, async) {
  const original = target[name];
  if (typeof original !== 'function') return;
  target[name] = function patched(...args) {
    try {
      record(classify(args), name, args[0]);
    } catch (e) {
      if (async) return Promise.reject(e);
      throw e;
    }
    return original.apply(this, args);
  };
}

const read = () => 'read';
const write = () => 'write';
const openFlags = (args) => (writing(args[1]) ? 'write' : 'read');

for (const [name, how] of [
  ['open', openFlags],
  ['readFile', read],
  ['readdir', read],
  ['opendir', read],
  ['writeFile', write],
  ['appendFile', write],
  ['mkdir', write],
  ['rename', write],
  ['rm', write],
  ['copyFile', write],
]) {
  wrap(fs.promises, name, how, true);
}
for (const [name, how] of [
  ['openSync', openFlags],
  ['readFileSync', read],
  ['readdirSync', read],
  ['createReadStream', read],
  ['createWriteStream', write],
  ['writeFileSync', write],
]) {
  wrap(fs, name, how, false);
}
syncBuiltinESMExports();
