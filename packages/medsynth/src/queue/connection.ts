/**
 * Connections to the study queue's Redis: `redis://[user:password@]host[:port][/db]`, or `rediss://…` for
 * TLS. A password can stay out of the URL (and so out of process lists and shell history) in
 * MEDSYNTH_REDIS_PASSWORD; a private CA for TLS in MEDSYNTH_REDIS_CA (a PEM file) or `ca`.
 *
 * BullMQ workers need `maxRetriesPerRequest: null` (a blocked command waits through a Redis restart rather
 * than failing); ioredis reconnects by itself with a capped back-off, so a restarted Redis is picked up
 * without any action from us.
 */
import { readFileSync } from 'node:fs';
import { Redis, type RedisOptions } from 'ioredis';
import { ConfigError } from '../runtime/errors.js';

export const PASSWORD_ENV = 'MEDSYNTH_REDIS_PASSWORD';
export const CA_ENV = 'MEDSYNTH_REDIS_CA';

export interface QueueConnectionOptions {
  /** A PEM file with the CA that signed the Redis server's certificate (rediss://). */
  readonly ca?: string | undefined;
  readonly env?: NodeJS.ProcessEnv | undefined;
}

/** The ioredis options for `url` (validated; a ConfigError names the flag). */
export function redisOptions(url: string, options: QueueConnectionOptions = {}): RedisOptions {
  const env = options.env ?? process.env;
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new ConfigError('the queue is not a URL', {
      field: '--queue',
      expected: 'redis://[user:password@]host[:port][/db] or rediss://…',
      found: url,
    });
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:')
    throw new ConfigError('the queue must be a Redis URL', {
      field: '--queue',
      expected: 'redis:// or rediss://',
      found: u.protocol,
    });
  const db = u.pathname.replace(/^\//, '');
  if (db !== '' && !/^\d+$/.test(db))
    throw new ConfigError('the Redis database must be a number', { field: '--queue', found: db });
  const password = u.password !== '' ? decodeURIComponent(u.password) : env[PASSWORD_ENV];
  const caFile = options.ca ?? env[CA_ENV];
  let ca: Buffer | undefined;
  if (caFile !== undefined && caFile !== '') {
    try {
      ca = readFileSync(caFile);
    } catch (e) {
      throw new ConfigError('cannot read the Redis CA certificate', { file: caFile, cause: e });
    }
  }
  return {
    host: u.hostname.replace(/^\[|\]$/g, '') || '127.0.0.1',
    port: u.port === '' ? 6379 : Number(u.port),
    ...(u.username !== '' ? { username: decodeURIComponent(u.username) } : {}),
    ...(password !== undefined && password !== '' ? { password } : {}),
    db: db === '' ? 0 : Number(db),
    ...(u.protocol === 'rediss:' ? { tls: { ...(ca ? { ca } : {}), servername: u.hostname } } : {}),
    maxRetriesPerRequest: null,
    enableReadyCheck: true,
    retryStrategy: (times: number) => Math.min(200 * times, 2000),
  };
}

/** An ioredis connection for BullMQ (the caller closes it with `quit()` or `disconnect()`). */
export function connectRedis(url: string, options: QueueConnectionOptions = {}): Redis {
  return new Redis(redisOptions(url, options));
}

/** The URL without its password, for messages and records. */
export function safeQueueUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password !== '') u.password = '***';
    return u.toString();
  } catch {
    return url;
  }
}
