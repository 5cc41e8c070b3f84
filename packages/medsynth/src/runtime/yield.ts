/**
 * Letting the event loop run during long synchronous compute. Awaiting an already resolved promise only runs
 * microtasks; timers, I/O callbacks and signals (a queue worker renewing its job's lock, a gRPC keepalive, a
 * progress renderer) wait until the loop reaches them. `yieldToEventLoop` gives them that turn
 * (`setImmediate`: after pending I/O, before the next timers pass); `Yielder` does so at most every
 * `intervalMs` of wall time, so a loop can call it every step for the price of a clock read.
 */
export const yieldToEventLoop = (): Promise<void> => new Promise<void>((resolve) => setImmediate(resolve));

export class Yielder {
  #last = performance.now();
  constructor(private readonly intervalMs = 200) {}

  /** Yields when `intervalMs` have passed since the last yield. */
  async maybe(): Promise<void> {
    const now = performance.now();
    if (now - this.#last < this.intervalMs) return;
    await yieldToEventLoop();
    this.#last = performance.now();
  }
}
