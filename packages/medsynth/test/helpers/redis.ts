/**
 * A Redis server for tests: Debian's `redis-server` on 127.0.0.1 at a free port, in a temporary folder, no
 * persistence (a restart loses every key, the harshest case for the queue), stopped by `stop()`.
 * `REDIS_MISSING` says why tests that need it are skipped (no redis-server on this machine; in CI, where
 * .ci/run installs it, they run and fail instead).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const found = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
export const REDIS_MISSING: string | false =
  found.status === 0 || process.env['CI']
    ? false
    : 'redis-server is not installed (apt-get install redis-server)';

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

async function accepting(port: number, seconds: number): Promise<void> {
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    const ok = await new Promise<boolean>((r) => {
      const c = connect(port, '127.0.0.1', () => {
        c.end();
        r(true);
      });
      c.once('error', () => r(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`redis-server did not listen on ${port} within ${seconds} s`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export interface TestRedis {
  readonly url: string;
  readonly port: number;
  /** Stops the server and starts a new one on the same port (all keys lost). */
  restart(options?: { downSeconds?: number }): Promise<void>;
  stop(): Promise<void>;
}

export async function startRedis(options: { password?: string } = {}): Promise<TestRedis> {
  const dir = await mkdtemp(join(tmpdir(), 'medsynth-redis-'));
  const port = await freePort();
  let proc: ChildProcess | null = null;
  const start = async () => {
    proc = spawn(
      'redis-server',
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--dir',
        dir,
        '--save',
        '',
        '--appendonly',
        'no',
        ...(options.password ? ['--requirepass', options.password] : []),
      ],
      { stdio: 'ignore' },
    );
    await accepting(port, 10);
  };
  const halt = async () => {
    const p = proc;
    proc = null;
    if (!p || p.exitCode !== null) return;
    await new Promise<void>((r) => {
      p.once('exit', () => r());
      p.kill('SIGKILL');
    });
  };
  await start();
  return {
    url: `redis://${options.password ? `:${options.password}@` : ''}127.0.0.1:${port}`,
    port,
    async restart({ downSeconds = 1 } = {}) {
      await halt();
      await new Promise((r) => setTimeout(r, downSeconds * 1000));
      await start();
    },
    async stop() {
      await halt();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
