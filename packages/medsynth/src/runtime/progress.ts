/**
 * Typed progress events. The library never prints: long work accepts an `onProgress` callback and an
 * `AbortSignal`; the CLI renders the events (a bar with ETA, or JSON lines with `--json`).
 */
export type ProgressEvent =
  | { readonly type: 'phase'; readonly phase: string; readonly detail?: string }
  | {
      readonly type: 'tick';
      readonly phase: string;
      readonly done: number;
      readonly total: number;
      readonly unit: string;
      /** Running values worth showing beside the bar (losses, images/s, augment p…). */
      readonly stats?: Readonly<Record<string, number>>;
    }
  | { readonly type: 'checkpoint'; readonly path: string; readonly step: number; readonly kimg: number }
  | { readonly type: 'metric'; readonly name: string; readonly value: number }
  | { readonly type: 'warning'; readonly message: string }
  | { readonly type: 'done'; readonly phase: string; readonly seconds: number };

export type ProgressCallback = (event: ProgressEvent) => void;

export interface RunControl {
  readonly onProgress?: ProgressCallback | undefined;
  readonly signal?: AbortSignal | undefined;
}

/** Throws the signal's reason if it was aborted. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  signal?.throwIfAborted();
}
