/**
 * TF.js models from the local file system: `model.json` plus the weight shard files its `weightsManifest`
 * lists (paths relative to the json's folder). tfjs-node's `file://` handler is not available on medsynth's
 * backends, so this reads the files itself and hands TF.js one `ModelArtifacts` with all shards concatenated
 * into a single ArrayBuffer. Works for both converter graph models and Layers models.
 */
import { readFile, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { DatasetError } from '../../runtime/errors.js';

export type ModelFormat = 'graph-model' | 'layers-model';

/** A model read from disk, ready for `loadGraphModel` / `loadLayersModel` through `modelFilesHandler`. */
export interface ModelFiles {
  /** Absolute path of the model.json that was read. */
  readonly jsonPath: string;
  readonly format: ModelFormat;
  /** The raw bytes of model.json (for content hashes). */
  readonly jsonBytes: Uint8Array;
  /** Absolute paths of the weight shards, in manifest order. */
  readonly shardPaths: readonly string[];
  /** Topology, weight specs and the concatenated shard bytes (in manifest order). */
  readonly artifacts: tf.io.ModelArtifacts & { readonly weightData: ArrayBuffer };
}

/** Bytes one stored value takes, or undefined when it varies (strings). */
function bytesPerValue(entry: tf.io.WeightsManifestEntry): number | undefined {
  const q = entry.quantization?.dtype;
  if (q === 'uint8') return 1;
  if (q === 'uint16' || q === 'float16') return 2;
  switch (entry.dtype) {
    case 'float32':
    case 'int32':
      return 4;
    case 'bool':
      return 1;
    case 'complex64':
      return 8;
    default:
      return undefined;
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Which kind of TF.js model a parsed model.json holds, or undefined when neither. */
export function detectModelFormat(json: Record<string, unknown>): ModelFormat | undefined {
  if (json['format'] === 'graph-model') return 'graph-model';
  if (json['format'] === 'layers-model') return 'layers-model';
  const topology = json['modelTopology'];
  if (!isRecord(topology)) return undefined;
  if (Array.isArray(topology['node'])) return 'graph-model';
  if (typeof topology['class_name'] === 'string' || isRecord(topology['model_config'])) return 'layers-model';
  return undefined;
}

/** The model.json a user path means: the path itself when it is a file, else `<folder>/model.json`. */
export async function resolveModelJson(modelPath: string): Promise<string> {
  const abs = resolve(modelPath);
  let info;
  try {
    info = await stat(abs);
  } catch (e) {
    throw new DatasetError('model path does not exist', { file: abs, cause: e });
  }
  return info.isDirectory() ? join(abs, 'model.json') : abs;
}

/**
 * Reads model.json and every weight shard it lists. Errors (`DatasetError`) name the missing, unreadable or
 * corrupt file: model.json that is not JSON or no TF.js model, a shard that is missing, a weight group whose
 * shards hold fewer or more bytes than its weights need.
 */
export async function readModelFiles(modelPath: string): Promise<ModelFiles> {
  const jsonPath = await resolveModelJson(modelPath);
  let jsonBytes: Uint8Array;
  try {
    jsonBytes = await readFile(jsonPath);
  } catch (e) {
    throw new DatasetError('cannot read the model file', { file: jsonPath, cause: e });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder().decode(jsonBytes));
  } catch (e) {
    throw new DatasetError('model.json is not valid JSON', { file: jsonPath, cause: e });
  }
  if (!isRecord(parsed) || !isRecord(parsed['modelTopology']))
    throw new DatasetError('not a TF.js model: no modelTopology', {
      file: jsonPath,
      field: 'modelTopology',
      expected: 'a TF.js graph model or Layers model (model.json)',
    });
  const format = detectModelFormat(parsed);
  if (format === undefined)
    throw new DatasetError('unknown TF.js model format', {
      file: jsonPath,
      field: 'format',
      expected: '"graph-model" or "layers-model"',
      found: JSON.stringify(parsed['format'] ?? null),
    });
  const manifest = parsed['weightsManifest'] ?? [];
  if (!Array.isArray(manifest))
    throw new DatasetError('weightsManifest is not a list', { file: jsonPath, field: 'weightsManifest' });

  const folder = dirname(jsonPath);
  const shardPaths: string[] = [];
  const chunks: Uint8Array[] = [];
  const specs: tf.io.WeightsManifestEntry[] = [];
  for (const [g, group] of (manifest as unknown[]).entries()) {
    const field = `weightsManifest[${g}]`;
    if (!isRecord(group) || !Array.isArray(group['paths']) || !Array.isArray(group['weights']))
      throw new DatasetError('weight group without paths/weights lists', { file: jsonPath, field });
    const weights = group['weights'] as tf.io.WeightsManifestEntry[];
    let groupBytes = 0;
    const groupFiles: string[] = [];
    for (const p of group['paths'] as unknown[]) {
      if (typeof p !== 'string')
        throw new DatasetError('weight shard path is not a string', {
          file: jsonPath,
          field: `${field}.paths`,
        });
      const shard = resolve(folder, p);
      let bytes: Uint8Array;
      try {
        bytes = await readFile(shard);
      } catch (e) {
        throw new DatasetError('cannot read a weight shard listed in model.json', {
          file: shard,
          field: `${field}.paths`,
          cause: e,
        });
      }
      shardPaths.push(shard);
      groupFiles.push(shard);
      chunks.push(bytes);
      groupBytes += bytes.byteLength;
    }
    let expected: number | undefined = 0;
    for (const w of weights) {
      const per = bytesPerValue(w);
      expected = per === undefined || expected === undefined ? undefined : expected + per * sizeOf(w.shape);
    }
    if (expected !== undefined && expected !== groupBytes)
      throw new DatasetError('weight shards are truncated or corrupt', {
        file: groupFiles.join(', ') || jsonPath,
        field,
        expected: `${expected} bytes for ${weights.length} weights`,
        found: `${groupBytes} bytes`,
      });
    specs.push(...weights);
  }

  const total = chunks.reduce((a, c) => a + c.byteLength, 0);
  const all = new Uint8Array(total);
  let offset = 0;
  for (const c of chunks) {
    all.set(c, offset);
    offset += c.byteLength;
  }
  const modelJson = parsed as unknown as tf.io.ModelJSON;
  const artifacts = tf.io.getModelArtifactsForJSONSync(modelJson, specs, all.buffer);
  return {
    jsonPath,
    format,
    jsonBytes,
    shardPaths,
    artifacts: { ...artifacts, format, weightData: all.buffer },
  };
}

function sizeOf(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/**
 * A TF.js `IOHandler` for a model on disk: a folder holding model.json, or the model.json itself. Pass it
 * to `loadGraphModel` or `loadLayersModel`; or pass already-read `ModelFiles` to load without reading again.
 */
export function modelFilesHandler(source: string | ModelFiles): tf.io.IOHandler {
  return {
    load: async () =>
      typeof source === 'string' ? (await readModelFiles(source)).artifacts : source.artifacts,
  };
}
