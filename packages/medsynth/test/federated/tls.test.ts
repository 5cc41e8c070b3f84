import assert from 'node:assert/strict';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PeerCertificate } from 'node:tls';
import { after, before, describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { addSiteCertificate, type CertificateFiles, makeCertificates } from '../../src/federated/certs.js';
import {
  type CallWithAuthContext,
  channelCredentials,
  peerSiteName,
  readTlsFiles,
  serverCredentials,
  type TlsFiles,
} from '../../src/federated/tls.js';
import { ConfigError } from '../../src/runtime/errors.js';

const SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';

/** A one-method echo service over raw bytes: no .proto needed. */
const identity = (b: Buffer): Buffer => b;
const echoService = {
  echo: {
    path: '/medsynth.test.Echo/Echo',
    requestStream: false,
    responseStream: false,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  },
} satisfies grpc.ServiceDefinition;
const EchoClient = grpc.makeGenericClientConstructor(echoService, 'Echo');

interface EchoServer {
  readonly server: grpc.Server;
  readonly port: number;
  /** The site name the handler saw on each call it ran. */
  readonly seen: (string | null)[];
}

async function startServer(creds: grpc.ServerCredentials): Promise<EchoServer> {
  const server = new grpc.Server();
  const seen: (string | null)[] = [];
  server.addService(echoService, {
    echo: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
      const site = peerSiteName(call);
      seen.push(site);
      callback(null, Buffer.concat([Buffer.from(`${site ?? '-'}:`), call.request]));
    },
  });
  try {
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', creds, (err, p) => (err ? reject(err) : resolve(p))),
    );
    return { server, port, seen };
  } catch (e) {
    server.forceShutdown();
    throw e;
  }
}

/** One echo call; the reply as text. The client is closed afterwards. */
function echo(port: number, creds: grpc.ChannelCredentials, host = '127.0.0.1'): Promise<string> {
  const client = new EchoClient(`${host}:${port}`, creds);
  return new Promise<string>((resolve, reject) => {
    client.makeUnaryRequest(
      echoService.echo.path,
      identity,
      identity,
      Buffer.from('ping'),
      new grpc.Metadata(),
      { deadline: Date.now() + 15_000 },
      (err, value) => {
        client.close();
        if (err) reject(err);
        else resolve(value!.toString());
      },
    );
  });
}

/** The call fails (the TLS handshake refuses the connection) and the server's handler never runs. */
async function assertRefused(srv: EchoServer, creds: grpc.ChannelCredentials): Promise<void> {
  const before = srv.seen.length;
  await assert.rejects(echo(srv.port, creds), (e: grpc.ServiceError) => {
    assert.equal(e.code, grpc.status.UNAVAILABLE, `${e.code}: ${e.message}`);
    return true;
  });
  assert.equal(srv.seen.length, before, 'the handler never ran');
}

function siteFiles(files: CertificateFiles, site: string, ca = files.ca.cert): TlsFiles {
  const pair = files.sites[site];
  assert.ok(pair, `site ${site}`);
  return { cert: pair.cert, key: pair.key, ca };
}

function coordinatorFiles(files: CertificateFiles): TlsFiles {
  return { cert: files.coordinator.cert, key: files.coordinator.key, ca: files.ca.cert };
}

/** Asserts that `promise` rejects with a ConfigError whose context matches `context`. */
async function assertConfigError(
  promise: Promise<unknown>,
  context: { file?: string; field?: string },
  message?: RegExp,
): Promise<void> {
  await assert.rejects(promise, (e: unknown) => {
    assert.ok(e instanceof ConfigError, `a ConfigError, got ${String(e)}`);
    if (context.file !== undefined) assert.equal(e.context.file, context.file);
    if (context.field !== undefined) assert.equal(e.context.field, context.field);
    if (message !== undefined) assert.match(e.message, message);
    return true;
  });
}

let root: string;
let main: CertificateFiles;
let other: CertificateFiles;

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'medsynth-tls-'));
  main = await makeCertificates(join(root, 'main'), { sites: ['a', 'b'] });
  other = await makeCertificates(join(root, 'other'), { sites: ['a'] });
});

after(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('makeCertificates', () => {
  test('writes a CA, a coordinator certificate and one client certificate per site, all signed by the CA', async () => {
    const dir = join(root, 'main');
    assert.deepEqual(main, {
      dir,
      ca: { cert: join(dir, 'ca.crt'), key: join(dir, 'ca.key') },
      coordinator: { cert: join(dir, 'coordinator.crt'), key: join(dir, 'coordinator.key') },
      sites: {
        a: { cert: join(dir, 'site-a.crt'), key: join(dir, 'site-a.key') },
        b: { cert: join(dir, 'site-b.crt'), key: join(dir, 'site-b.key') },
      },
    });
    assert.deepEqual((await readdir(dir)).sort(), [
      'ca.crt',
      'ca.key',
      'coordinator.crt',
      'coordinator.key',
      'site-a.crt',
      'site-a.key',
      'site-b.crt',
      'site-b.key',
    ]);
    const load = async (f: string) => new X509Certificate(await readFile(f));
    const ca = await load(main.ca.cert);
    assert.equal(ca.ca, true);
    assert.equal(ca.subject, ca.issuer, 'self-signed');
    assert.ok(ca.verify(ca.publicKey));
    assert.ok(ca.checkPrivateKey(createPrivateKey(await readFile(main.ca.key))));
    assert.equal(ca.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');

    const coordinator = await load(main.coordinator.cert);
    assert.equal(coordinator.ca, false);
    assert.ok(coordinator.checkIssued(ca) && coordinator.verify(ca.publicKey), 'signed by the CA');
    assert.deepEqual(coordinator.keyUsage, [SERVER_AUTH]);
    assert.equal(coordinator.subjectAltName, 'IP Address:127.0.0.1, DNS:localhost');
    assert.ok(coordinator.checkPrivateKey(createPrivateKey(await readFile(main.coordinator.key))));
    const days = (Date.parse(coordinator.validTo) - Date.now()) / 86_400_000;
    assert.ok(days > 364 && days <= 365, `valid for ${days} days`);

    for (const site of ['a', 'b'] as const) {
      const cert = await load(main.sites[site].cert);
      assert.equal(cert.subject, `CN=${site}`);
      assert.equal(cert.ca, false);
      assert.ok(cert.checkIssued(ca) && cert.verify(ca.publicKey), `site ${site} signed by the CA`);
      assert.deepEqual(cert.keyUsage, [CLIENT_AUTH]);
      assert.ok(cert.checkPrivateKey(createPrivateKey(await readFile(main.sites[site].key))));
    }
    const otherCa = await load(other.ca.cert);
    assert.notEqual(otherCa.fingerprint256, ca.fingerprint256, 'each call makes a new CA');
    assert.equal((await load(other.sites['a']!.cert)).checkIssued(ca), false);
  });

  test('private keys are written with mode 0600, certificates readable, and no temporary files are left', async () => {
    for (const pair of [main.ca, main.coordinator, ...Object.values(main.sites)]) {
      assert.equal((await stat(pair.key)).mode & 0o777, 0o600, pair.key);
      assert.equal((await stat(pair.cert)).mode & 0o600, 0o600, pair.cert);
    }
    assert.deepEqual(
      (await readdir(main.dir)).filter((n) => n.startsWith('.')),
      [],
    );
  });

  test('hosts become the SubjectAltName (IP addresses and DNS names); days the lifetime', async () => {
    const dir = join(root, 'hosts');
    const files = await makeCertificates(dir, {
      sites: [],
      hosts: ['10.0.0.7', 'coordinator.example.org', '::1'],
      days: 2,
    });
    const cert = new X509Certificate(await readFile(files.coordinator.cert));
    assert.equal(
      cert.subjectAltName,
      'IP Address:10.0.0.7, DNS:coordinator.example.org, IP Address:0:0:0:0:0:0:0:1',
    );
    const days = (Date.parse(cert.validTo) - Date.now()) / 86_400_000;
    assert.ok(days > 1 && days <= 2, `valid for ${days} days`);
    assert.deepEqual(files.sites, {});
  });

  test('refuses to overwrite existing files unless force is set', async () => {
    const dir = join(root, 'again');
    const first = await makeCertificates(dir, { sites: ['x'] });
    const before = await readFile(first.ca.cert, 'utf8');
    await assertConfigError(
      makeCertificates(dir, { sites: ['x'] }),
      { file: first.ca.cert },
      /already exists/,
    );
    assert.equal(await readFile(first.ca.cert, 'utf8'), before, 'untouched');
    await makeCertificates(dir, { sites: ['x'], force: true });
    assert.notEqual(await readFile(first.ca.cert, 'utf8'), before, 'a new CA with force');
    assert.equal((await stat(first.ca.key)).mode & 0o777, 0o600, 'an overwritten key keeps mode 0600');
  });

  const badSites: readonly (readonly string[])[] = [
    [''],
    ['a b'],
    ['../evil'],
    ['a/b'],
    ['a.b'],
    ['é'],
    ['x'.repeat(65)],
    ['a', 'a'],
  ];
  for (const sites of badSites)
    test(`refuses site names ${JSON.stringify(sites)} (--sites) and writes nothing`, async () => {
      const dir = join(root, 'bad-sites');
      await assertConfigError(makeCertificates(dir, { sites }), { field: '--sites' });
      await assert.rejects(stat(dir), { code: 'ENOENT' });
    });

  test('refuses bad hosts and lifetimes', async () => {
    const dir = join(root, 'bad-options');
    await assertConfigError(makeCertificates(dir, { sites: ['a'], hosts: [] }), { field: '--hosts' });
    await assertConfigError(makeCertificates(dir, { sites: ['a'], hosts: ['bad host'] }), {
      field: '--hosts',
    });
    for (const days of [0, -1, 1.5, Number.NaN])
      await assertConfigError(makeCertificates(dir, { sites: ['a'], days }), { field: '--days' });
    await assert.rejects(stat(dir), { code: 'ENOENT' });
  });
});

describe('addSiteCertificate', () => {
  test('signs one more site certificate with the CA in the folder', async () => {
    const pair = await addSiteCertificate(main.dir, 'late-site_2');
    assert.deepEqual(pair, {
      cert: join(main.dir, 'site-late-site_2.crt'),
      key: join(main.dir, 'site-late-site_2.key'),
    });
    const ca = new X509Certificate(await readFile(main.ca.cert));
    const cert = new X509Certificate(await readFile(pair.cert));
    assert.equal(cert.subject, 'CN=late-site_2');
    assert.ok(cert.checkIssued(ca) && cert.verify(ca.publicKey));
    assert.deepEqual(cert.keyUsage, [CLIENT_AUTH]);
    assert.equal((await stat(pair.key)).mode & 0o777, 0o600);
    assert.ok(Date.parse(cert.validTo) <= Date.parse(ca.validTo), 'not past the CA');
  });

  test('refuses an existing site unless force is set, a bad name, and a folder without a CA', async () => {
    await assertConfigError(addSiteCertificate(main.dir, 'a'), { file: main.sites['a']!.cert });
    await assertConfigError(addSiteCertificate(main.dir, 'no good'), { field: '--sites' });
    const empty = await mkdtemp(join(root, 'empty-'));
    await assertConfigError(addSiteCertificate(empty, 'c'), { file: join(empty, 'ca.crt') });
    // A CA key that is not the CA certificate's.
    const mixed = await mkdtemp(join(root, 'mixed-'));
    await writeFile(join(mixed, 'ca.crt'), await readFile(main.ca.cert));
    await writeFile(join(mixed, 'ca.key'), await readFile(other.ca.key));
    await assertConfigError(
      addSiteCertificate(mixed, 'c'),
      { file: join(mixed, 'ca.key') },
      /not the private key/,
    );
  });
});

describe('mutual TLS over gRPC', () => {
  let srv: EchoServer;
  before(async () => {
    srv = await startServer(await serverCredentials(coordinatorFiles(main)));
  });
  after(() => {
    srv.server.forceShutdown();
  });

  test('a site whose certificate the CA signed gets through, and the server sees its CN', async () => {
    assert.equal(await echo(srv.port, await channelCredentials(siteFiles(main, 'a'))), 'a:ping');
    assert.equal(await echo(srv.port, await channelCredentials(siteFiles(main, 'b')), 'localhost'), 'b:ping');
    assert.deepEqual(srv.seen.slice(-2), ['a', 'b']);
  });

  test('a client certificate from another CA is refused (even with a known CN)', async () => {
    // The client trusts the right CA (so it accepts the server), but its own certificate is the other CA's.
    await assertRefused(srv, await channelCredentials(siteFiles(other, 'a', main.ca.cert)));
  });

  test('a TLS client without a client certificate is refused', async () => {
    await assertRefused(srv, grpc.credentials.createSsl(await readFile(main.ca.cert)));
  });

  test('a plaintext client is refused', async () => {
    await assertRefused(srv, await channelCredentials('insecure'));
  });

  test('the coordinator certificate (serverAuth only) is refused as a client certificate', async () => {
    await assertRefused(srv, await channelCredentials(coordinatorFiles(main)));
  });

  test('a site refuses a server whose certificate another CA signed', async () => {
    const before = srv.seen.length;
    await assert.rejects(
      echo(srv.port, await channelCredentials(siteFiles(other, 'a'))),
      (e: grpc.ServiceError) => {
        assert.equal(e.code, grpc.status.UNAVAILABLE, e.message);
        return true;
      },
    );
    assert.equal(srv.seen.length, before);
  });

  test("a site refuses a server dialled by a name outside the server certificate's SubjectAltName", async () => {
    const before = srv.seen.length;
    const creds = await channelCredentials(siteFiles(main, 'a'));
    // 127.0.0.2 reaches the same loopback interface, but the certificate names 127.0.0.1 and localhost only.
    await assert.rejects(echo(srv.port, creds, '127.0.0.2'), (e: grpc.ServiceError) => {
      assert.equal(e.code, grpc.status.UNAVAILABLE, e.message);
      return true;
    });
    assert.equal(srv.seen.length, before);
  });

  test("'insecure' on both ends works, and there is no site name", async () => {
    const plain = await startServer(await serverCredentials('insecure'));
    try {
      assert.equal(await echo(plain.port, await channelCredentials('insecure')), '-:ping');
      assert.deepEqual(plain.seen, [null]);
    } finally {
      plain.server.forceShutdown();
    }
  });
});

describe('peerSiteName', () => {
  const call = (cert: object | undefined): CallWithAuthContext => ({
    getAuthContext: () => ({
      transportSecurityType: 'ssl',
      sslPeerCertificate: cert as PeerCertificate | undefined,
    }),
  });
  const cases: readonly [string, CallWithAuthContext, string | null][] = [
    ['a client certificate', call({ subject: { CN: 'site-1' }, ext_key_usage: [CLIENT_AUTH] }), 'site-1'],
    ['no extended key usage', call({ subject: { CN: 'site-1' } }), 'site-1'],
    ['serverAuth only', call({ subject: { CN: 'site-1' }, ext_key_usage: [SERVER_AUTH] }), null],
    ['a CN that is no site name', call({ subject: { CN: 'a b' }, ext_key_usage: [CLIENT_AUTH] }), null],
    ['two CNs', call({ subject: { CN: ['a', 'b'] }, ext_key_usage: [CLIENT_AUTH] }), null],
    ['no CN', call({ subject: {}, ext_key_usage: [CLIENT_AUTH] }), null],
    ['no verified certificate', call(undefined), null],
    ['an empty auth context (plaintext)', { getAuthContext: () => ({}) }, null],
    ['no auth context at all', {}, null],
  ];
  for (const [name, c, expected] of cases)
    test(name, () => {
      assert.equal(peerSiteName(c), expected);
    });
});

describe('TLS files: errors name the file and the flag', () => {
  test('a missing file', async () => {
    const missing = join(root, 'nope.crt');
    for (const [which, flag] of [
      ['cert', '--tls-cert'],
      ['key', '--tls-key'],
      ['ca', '--ca'],
    ] as const) {
      const files = { ...coordinatorFiles(main), [which]: missing };
      await assertConfigError(serverCredentials(files), { file: missing, field: flag }, /no such file/);
      await assertConfigError(channelCredentials(files), { file: missing, field: flag }, /no such file/);
    }
  });

  test('a key that does not belong to the certificate names both files', async () => {
    const files = { ...siteFiles(main, 'a'), key: main.sites['b']!.key };
    for (const make of [serverCredentials, channelCredentials]) {
      await assert.rejects(make(files), (e: unknown) => {
        assert.ok(e instanceof ConfigError);
        assert.equal(e.context.file, files.key);
        assert.equal(e.context.field, '--tls-key');
        assert.ok(e.message.includes(files.key) && e.message.includes(files.cert), e.message);
        return true;
      });
    }
  });

  test('files that are not PEM of the right kind', async () => {
    const empty = join(root, 'empty.pem');
    const garbage = join(root, 'garbage.pem');
    const corrupt = join(root, 'corrupt.crt');
    await writeFile(empty, '');
    await writeFile(garbage, 'hello\n');
    await writeFile(corrupt, '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n');
    const good = coordinatorFiles(main);
    const cases: readonly [Partial<TlsFiles>, string, string, RegExp][] = [
      [{ cert: good.key }, good.key, '--tls-cert', /PEM PRIVATE KEY/], // the flags swapped
      [{ key: good.cert }, good.cert, '--tls-key', /PEM CERTIFICATE/],
      [{ ca: empty }, empty, '--ca', /empty file/],
      [{ ca: garbage }, garbage, '--ca', /no PEM block/],
      [{ cert: corrupt }, corrupt, '--tls-cert', /cannot be parsed/],
      [{ ca: root }, root, '--ca', /a folder/],
    ];
    for (const [change, file, field, message] of cases)
      await assertConfigError(readTlsFiles({ ...good, ...change }), { file, field }, message);
  });

  test('good files read back as the PEM bytes', async () => {
    const m = await readTlsFiles(coordinatorFiles(main));
    assert.deepEqual(m.cert, await readFile(main.coordinator.cert));
    assert.deepEqual(m.key, await readFile(main.coordinator.key));
    assert.deepEqual(m.ca, await readFile(main.ca.cert));
  });
});
