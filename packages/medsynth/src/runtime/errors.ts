/**
 * The medsynth error hierarchy. Every error a user can cause (bad input, bad config, bad data) is a
 * `MedsynthError` subclass that names *where* the problem is (file, entry/field) and, where it helps,
 * what was expected and what was found. The CLI maps `exitCode` to the process exit status:
 * 2 for usage/config/input errors, 1 for runtime failures.
 */

export interface ErrorContext {
  /** The file or URL the problem is in. */
  readonly file?: string;
  /** The entry inside the file (npz key, DICOM tag, CSV row…) or the config field/flag. */
  readonly field?: string;
  readonly expected?: string;
  readonly found?: string;
}

export interface MedsynthErrorOptions extends ErrorContext {
  readonly cause?: unknown;
}

export type ErrorCode =
  | 'MEDSYNTH_ERROR'
  | 'CONFIG_ERROR'
  | 'DATASET_ERROR'
  | 'DOWNLOAD_ERROR'
  | 'INTEGRITY_ERROR'
  | 'UNSUPPORTED_FORMAT'
  | 'RUNTIME_ERROR'
  | 'CHECKPOINT_ERROR'
  | 'TRAINING_ERROR'
  | 'STUDY_ERROR'
  | 'FILESYSTEM_ERROR'
  | 'FEDERATION_ERROR'
  | 'QUEUE_ERROR'
  | 'ARTIFACT_ERROR';

export class MedsynthError extends Error {
  override readonly name: string = 'MedsynthError';
  readonly code: ErrorCode = 'MEDSYNTH_ERROR';
  /** Process exit code the CLI uses: 2 = usage/config/input, 1 = runtime. */
  readonly exitCode: 1 | 2 = 1;
  readonly context: ErrorContext;

  constructor(message: string, options: MedsynthErrorOptions = {}) {
    const { cause, ...context } = options;
    super(formatMessage(message, context), cause === undefined ? undefined : { cause });
    this.context = context;
  }

  toJSON(): Record<string, unknown> {
    return { name: this.name, code: this.code, message: this.message, ...this.context };
  }
}

/** A bad option, flag or config file value. */
export class ConfigError extends MedsynthError {
  override readonly name = 'ConfigError';
  override readonly code = 'CONFIG_ERROR';
  override readonly exitCode = 2;
}

/** Input data that cannot be used: corrupt/truncated file, missing key, count mismatch, empty class… */
export class DatasetError extends MedsynthError {
  override readonly name: string = 'DatasetError';
  override readonly code: ErrorCode = 'DATASET_ERROR';
  override readonly exitCode = 2;
}

/** A format or encoding medsynth recognises but cannot decode (e.g. a DICOM transfer syntax without a codec). */
export class UnsupportedFormatError extends DatasetError {
  override readonly name = 'UnsupportedFormatError';
  override readonly code = 'UNSUPPORTED_FORMAT';
}

/** A downloaded or cached file whose checksum is not the expected one. */
export class IntegrityError extends DatasetError {
  override readonly name = 'IntegrityError';
  override readonly code = 'INTEGRITY_ERROR';
}

/** A download that failed for reasons outside the input (network, server). */
export class DownloadError extends MedsynthError {
  override readonly name = 'DownloadError';
  override readonly code = 'DOWNLOAD_ERROR';
  override readonly exitCode = 1;
}

/** A checkpoint or run directory that cannot be used: missing, truncated, or made with different options. */
export class CheckpointError extends MedsynthError {
  override readonly name = 'CheckpointError';
  override readonly code = 'CHECKPOINT_ERROR';
  override readonly exitCode = 2;
}

/** Training that cannot go on (a NaN/Inf loss): the message says which step and where the last good checkpoint is. */
export class TrainingError extends MedsynthError {
  override readonly name = 'TrainingError';
  override readonly code = 'TRAINING_ERROR';
  override readonly exitCode = 1;
}

/** A study directory or results database that cannot be used (another study's, a newer format, unreadable). */
export class StudyError extends MedsynthError {
  override readonly name = 'StudyError';
  override readonly code = 'STUDY_ERROR';
  override readonly exitCode = 2;
}

/**
 * The file system refused a write or a read that the input did not cause: a full disk, no permission, a
 * read-only mount, too many open files. Names the path and what was being written; a runtime failure (exit 1).
 */
export class FileSystemError extends MedsynthError {
  override readonly name = 'FileSystemError';
  override readonly code = 'FILESYSTEM_ERROR';
  override readonly exitCode = 1;
}

/**
 * A federation that cannot go on: a peer's message that breaks the protocol (bad manifest, checksum, size),
 * sites that disagree on the data's classes, a coordinator that stays unreachable. A runtime failure (exit 1).
 */
export class FederationError extends MedsynthError {
  override readonly name = 'FederationError';
  override readonly code = 'FEDERATION_ERROR';
  override readonly exitCode = 1;
}

/**
 * A study queue that cannot be used: Redis unreachable or refusing (password, TLS), a job whose study config
 * does not match its hash or signature, a job of an unknown kind. A runtime failure (exit 1).
 */
export class QueueError extends MedsynthError {
  override readonly name = 'QueueError';
  override readonly code = 'QUEUE_ERROR';
  override readonly exitCode = 1;
}

/** Why an artifact operation failed (see `ArtifactError`). */
export type ArtifactErrorReason = 'missing' | 'damaged' | 'refused' | 'unavailable';

export interface ArtifactErrorOptions extends MedsynthErrorOptions {
  /** The artifact's key (`<namespace>/<sha256 hex>`). */
  readonly key: string;
  readonly reason: ArtifactErrorReason;
}

/**
 * An artifact of a distributed study (queue/artifacts.ts) that cannot be used: `missing` (no complete copy in
 * the store), `damaged` (a file or object whose size or SHA-256 is not the manifest's, an unreadable
 * manifest), `refused` (a folder that cannot be stored as it is — a symlink, a special file —, a destination
 * that cannot take it, or the wrong kind of artifact for the call) or `unavailable` (the store cannot be
 * reached or refuses access). Names the key and the file or object. A runtime failure (exit 1).
 */
export class ArtifactError extends MedsynthError {
  override readonly name = 'ArtifactError';
  override readonly code = 'ARTIFACT_ERROR';
  override readonly exitCode = 1;
  readonly key: string;
  readonly reason: ArtifactErrorReason;

  constructor(message: string, options: ArtifactErrorOptions) {
    const { key, reason, ...rest } = options;
    super(message, rest);
    this.key = key;
    this.reason = reason;
  }

  override toJSON(): Record<string, unknown> {
    return { ...super.toJSON(), key: this.key, reason: this.reason };
  }
}

export function isMedsynthError(e: unknown): e is MedsynthError {
  return e instanceof MedsynthError;
}

function formatMessage(message: string, ctx: ErrorContext): string {
  const where = [ctx.file, ctx.field && `[${ctx.field}]`].filter(Boolean).join(' ');
  const detail = [
    ctx.expected !== undefined ? `expected ${ctx.expected}` : undefined,
    ctx.found !== undefined ? `found ${ctx.found}` : undefined,
  ]
    .filter(Boolean)
    .join(', ');
  return `${where ? `${where}: ` : ''}${message}${detail ? ` (${detail})` : ''}`;
}
