/**
 * `medsynth doctor`: the machine, the TF.js backend medsynth computes on and why, every backend tried, the
 * libtorch build, and a quick check that the backend computes correctly. Exit 0 when a backend works.
 */
import os from 'node:os';
import { type Command, InvalidArgumentError, Option } from 'commander';
import type { BackendAttempt, BackendName, BackendReport, SanityCheck } from '../runtime/backend.js';
import { MedsynthError } from '../runtime/errors.js';
import { parseInteger } from './data-flags.js';

const BACKEND_CHOICES = ['libtorch', 'tfjs-node', 'wasm', 'cpu'] as const satisfies readonly BackendName[];

interface DoctorFlags {
  json?: boolean;
  backend?: BackendName;
  threads?: number;
  device?: string;
}

/** Everything `medsynth doctor` finds; printed as is with --json. */
export interface DoctorReport {
  /** A backend was selected and its sanity check passed. */
  ok: boolean;
  node: string;
  platform: string;
  arch: string;
  cpu: { cores: number; model: string };
  memoryGiB: number;
  tfjs: string;
  /** The selected backend's report; null when none can be used. */
  backend: BackendReport | null;
  /** Every backend tried, with what was found. */
  tried: BackendAttempt[];
  /** Why no backend could be used. */
  error?: string;
  sanity?: SanityCheck;
}

export function registerDoctorCommand(program: Command): void {
  program
    .command('doctor')
    .description('check which TF.js backend medsynth uses and why, and that it computes correctly')
    .option('--json', 'print one JSON object instead of text')
    .addOption(
      new Option(
        '--backend <name>',
        'check this backend only (default: $MEDSYNTH_BACKEND, else all)',
      ).choices(BACKEND_CHOICES),
    )
    .option('--threads <n>', 'libtorch intra-op threads', (v: string) => {
      const n = parseInteger('--threads')(v);
      if (n < 1) throw new InvalidArgumentError('--threads must be ≥ 1');
      return n;
    })
    .option('--device <device>', "libtorch device: 'cpu', 'cuda' or 'cuda:N'")
    .action(async (flags: DoctorFlags) => {
      const report = await runDoctor(flags);
      process.stdout.write(flags.json ? `${JSON.stringify(report, null, 2)}\n` : `${formatDoctor(report)}\n`);
      if (!report.ok) {
        const why = report.error ?? sanityFailure(report.sanity);
        throw new MedsynthError(`no working TF.js backend: ${why}`);
      }
    });
}

async function runDoctor(flags: DoctorFlags): Promise<DoctorReport> {
  // Loaded here so that other commands do not pay for TF.js.
  const { BackendError, checkBackend, selectBackend, TFJS_VERSION } = await import('../runtime/backend.js');
  const cpus = os.cpus();
  const report: DoctorReport = {
    ok: false,
    node: process.version,
    platform: process.platform,
    arch: process.arch,
    cpu: { cores: os.availableParallelism(), model: cpus[0]?.model.trim() ?? 'unknown' },
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    tfjs: TFJS_VERSION,
    backend: null,
    tried: [],
  };
  try {
    const selected = await selectBackend({
      prefer: flags.backend,
      threads: flags.threads,
      device: flags.device,
      probeAll: true,
    });
    report.backend = selected;
    report.tried = selected.tried;
  } catch (error) {
    // An unknown $MEDSYNTH_BACKEND is a usage error, reported as such.
    if (!(error instanceof BackendError)) throw error;
    report.tried = error.attempts;
    const attempt = error.attempts[0];
    report.error =
      flags.backend && attempt
        ? `--backend ${flags.backend} cannot be used: ${attempt.reason}`
        : error.message;
    return report;
  }
  report.sanity = await checkBackend();
  report.ok = report.sanity.ok;
  return report;
}

function sanityFailure(sanity: SanityCheck | undefined): string {
  if (!sanity) return 'not checked';
  if (sanity.error) return `the sanity check failed on ${sanity.backend}: ${sanity.error}`;
  const bad = sanity.checks.filter((c) => !c.ok).map((c) => `${c.name} (relative error ${fmt(c.relError)})`);
  return `${sanity.backend} computes wrong results: ${bad.join(', ')}`;
}

function fmt(x: number): string {
  if (x === 0) return '0';
  if (!Number.isFinite(x)) return String(x);
  return x.toExponential(1);
}

export function formatDoctor(r: DoctorReport): string {
  const lines: string[] = [];
  const kv = (k: string, v: string) => lines.push(`${k.padEnd(11)} ${v}`);
  const more = (v: string) => lines.push(`${''.padEnd(11)} ${v}`);
  kv('node', `${r.node} (${r.platform} ${r.arch})`);
  kv('cpu', `${r.cpu.cores} cores · ${r.cpu.model} · ${r.memoryGiB} GiB memory`);
  kv('backend', r.backend ? r.backend.backend : 'none can be used');
  kv('why', r.backend ? r.backend.reason : (r.error ?? ''));
  const width = Math.max(...r.tried.map((t) => t.backend.length), 0);
  r.tried.forEach((t, i) => {
    const line = `${t.backend.padEnd(width)}  ${t.ok ? 'ok' : '--'}  ${t.reason}`;
    if (i === 0) kv('tried', line);
    else more(line);
  });
  const lt = r.backend?.libtorch;
  if (lt) {
    kv(
      'libtorch',
      `version ${lt.version} · ${lt.threads} threads · oneDNN ${yesNo(lt.mkldnn)} · CUDA ${yesNo(lt.cuda)}` +
        ` · device ${lt.device}`,
    );
    if (lt.fallbackKernels && lt.fallbackKernels.length > 0) {
      more(`${lt.fallbackKernels.length} kernels run on tfjs-backend-cpu: ${lt.fallbackKernels.join(', ')}`);
    }
  } else {
    const attempt = r.tried.find((t) => t.backend === 'libtorch');
    kv(
      'libtorch',
      attempt ? (attempt.ok ? 'works, not selected' : `not available: ${attempt.reason}`) : 'not tried',
    );
  }
  if (r.backend?.backend === 'wasm') {
    kv(
      'wasm',
      `${r.backend.threads} thread(s) · training kernels: ${(r.backend.wasmKernels ?? []).join(', ')}`,
    );
  }
  kv('tfjs', r.tfjs);
  if (r.sanity) {
    const s = r.sanity;
    if (s.error) kv('sanity', `FAIL: ${s.error}`);
    const nameWidth = Math.max(...s.checks.map((c) => c.name.length), 0);
    s.checks.forEach((c, i) => {
      const line =
        `${c.ok ? 'OK  ' : 'FAIL'}  ${c.name.padEnd(nameWidth)}  max error ${fmt(c.maxError)}` +
        ` (relative ${fmt(c.relError)}) · ${c.ms.toFixed(1)} ms`;
      if (i === 0 && !s.error) kv('sanity', line);
      else more(line);
    });
    more(`reference: ${s.reference === 'cpu' ? '@tensorflow/tfjs-backend-cpu' : 'float64 JavaScript loops'}`);
  }
  kv(
    'result',
    r.ok
      ? `OK: medsynth computes on ${r.backend?.backend ?? '?'}`
      : `FAIL: ${r.error ?? sanityFailure(r.sanity)}`,
  );
  return lines.join('\n');
}

function yesNo(b: boolean): string {
  return b ? 'yes' : 'no';
}
