/**
 * gRPC credentials for federated training with mutual TLS. The coordinator presents its certificate and accepts
 * only clients whose certificate the CA (`--ca`) signed; a site presents its certificate and accepts only a
 * coordinator whose certificate the CA signed and names the host the site dialled (see `certs.ts` for the files).
 *
 * The files are read and checked up front, so that a wrong path, a file that is not PEM, or a key that does not
 * belong to its certificate is a `ConfigError` naming the file and the flag (`--tls-cert`, `--tls-key`, `--ca`)
 * rather than a TLS handshake failure later. `'insecure'` gives plaintext credentials (tests, a single machine).
 *
 * Not checked up front: that the CA signed one's own certificate. The trust anchors in `--ca` verify the *other*
 * party, which may be signed by another CA than one's own certificate.
 */
import { createPrivateKey, type KeyObject, X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { PeerCertificate } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { ConfigError } from '../runtime/errors.js';
import { errnoCode } from '../runtime/fs.js';
import { isSiteName } from './certs.js';

/** The PEM files of one party: its certificate (chain), its private key, and the CA certificate(s) it trusts. */
export interface TlsFiles {
  readonly cert: string;
  readonly key: string;
  readonly ca: string;
}

/** Mutual TLS with these files, or plaintext. */
export type TlsSetting = TlsFiles | 'insecure';

/** The checked contents of `TlsFiles`, ready for gRPC. */
export interface TlsMaterial {
  readonly cert: Buffer;
  readonly key: Buffer;
  readonly ca: Buffer;
}

/** The flag each file comes from, for errors. */
export const TLS_FLAGS = { cert: '--tls-cert', key: '--tls-key', ca: '--ca' } as const;

const CLIENT_AUTH_OID = '1.3.6.1.5.5.7.3.2';

/**
 * Server credentials for the coordinator: TLS with `files.cert`/`files.key`, requiring every client to present a
 * certificate that a CA in `files.ca` signed (checkClientCertificate). `'insecure'` gives plaintext.
 */
export async function serverCredentials(files: TlsSetting): Promise<grpc.ServerCredentials> {
  if (files === 'insecure') return grpc.ServerCredentials.createInsecure();
  const m = await readTlsFiles(files);
  return grpc.ServerCredentials.createSsl(m.ca, [{ cert_chain: m.cert, private_key: m.key }], true);
}

/**
 * Channel credentials for a site: TLS presenting `files.cert`/`files.key` as the client certificate, trusting only
 * servers that a CA in `files.ca` signed. `'insecure'` gives plaintext.
 */
export async function channelCredentials(files: TlsSetting): Promise<grpc.ChannelCredentials> {
  if (files === 'insecure') return grpc.credentials.createInsecure();
  const m = await readTlsFiles(files);
  return grpc.credentials.createSsl(m.ca, m.key, m.cert);
}

/**
 * Reads and checks the three files: each readable PEM of the right kind, the certificates parseable and not
 * expired, the key unencrypted and the private key of `files.cert`. Throws a `ConfigError` naming the file and flag.
 */
export async function readTlsFiles(files: TlsFiles): Promise<TlsMaterial> {
  const [certText, keyText, caText] = await Promise.all([
    readText(files.cert, TLS_FLAGS.cert, 'certificate'),
    readText(files.key, TLS_FLAGS.key, 'private key'),
    readText(files.ca, TLS_FLAGS.ca, 'CA certificate'),
  ]);
  const [leaf] = parseCertificates(certText, files.cert, TLS_FLAGS.cert, 'certificate');
  const cas = parseCertificates(caText, files.ca, TLS_FLAGS.ca, 'CA certificate');
  const key = parseKey(keyText, files.key);
  const now = Date.now();
  if (Date.parse(leaf!.validTo) <= now)
    throw new ConfigError('the certificate has expired', {
      file: files.cert,
      field: TLS_FLAGS.cert,
      found: `valid until ${leaf!.validTo}`,
    });
  if (Date.parse(leaf!.validFrom) > now)
    throw new ConfigError('the certificate is not valid yet (is this clock right?)', {
      file: files.cert,
      field: TLS_FLAGS.cert,
      found: `valid from ${leaf!.validFrom}`,
    });
  if (cas.every((c) => Date.parse(c.validTo) <= now))
    throw new ConfigError('the CA certificate has expired', {
      file: files.ca,
      field: TLS_FLAGS.ca,
      found: `valid until ${cas[0]!.validTo}`,
    });
  if (!leaf!.checkPrivateKey(key))
    throw new ConfigError(`the private key ${files.key} does not belong to the certificate ${files.cert}`, {
      file: files.key,
      field: TLS_FLAGS.key,
      expected: `the private key of ${files.cert}`,
      found: 'the key of another certificate',
    });
  return { cert: Buffer.from(certText), key: Buffer.from(keyText), ca: Buffer.from(caText) };
}

/** A server call, as far as `peerSiteName` needs it (every grpc-js server call type fits). */
export interface CallWithAuthContext {
  getAuthContext?(): {
    readonly transportSecurityType?: string | undefined;
    readonly sslPeerCertificate?: PeerCertificate | undefined;
  } | null;
}

/**
 * The site name of a server call: the CN of the client certificate the TLS handshake verified, or null when there
 * is none that identifies a site — a plaintext (insecure) server, a certificate without the clientAuth purpose
 * (e.g. the coordinator's own), or a CN that is not a site name.
 */
export function peerSiteName(call: CallWithAuthContext): string | null {
  const cert = call.getAuthContext?.()?.sslPeerCertificate;
  if (cert === undefined) return null;
  const usages = cert.ext_key_usage;
  if (usages !== undefined && !usages.includes(CLIENT_AUTH_OID)) return null;
  // Node gives an array when the subject holds several CNs: that identifies no single site.
  const cn: unknown = cert.subject?.CN;
  return typeof cn === 'string' && isSiteName(cn) ? cn : null;
}

const READ_ERRORS: Readonly<Record<string, string>> = {
  ENOENT: 'no such file',
  EACCES: 'no permission to read it',
  EPERM: 'no permission to read it',
  EISDIR: 'a folder',
};

async function readText(file: string, flag: string, what: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (e) {
    const code = errnoCode(e);
    throw new ConfigError(`cannot read the ${what}`, {
      file,
      field: flag,
      expected: `a PEM ${what} file`,
      found: (code !== undefined ? READ_ERRORS[code] : undefined) ?? code ?? String(e),
      cause: e,
    });
  }
}

const CERT_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

function parseCertificates(text: string, file: string, flag: string, what: string): X509Certificate[] {
  const blocks = text.match(CERT_BLOCK) ?? [];
  if (blocks.length === 0)
    throw new ConfigError(`not a PEM ${what}`, {
      file,
      field: flag,
      expected: `a PEM ${what} (-----BEGIN CERTIFICATE-----)`,
      found: describePem(text),
    });
  return blocks.map((block, i) => {
    try {
      return new X509Certificate(block);
    } catch (e) {
      throw new ConfigError(`the ${what} cannot be parsed`, {
        file,
        field: flag,
        expected: `a PEM ${what}`,
        found: `a corrupt certificate (number ${i + 1} in the file)`,
        cause: e,
      });
    }
  });
}

function parseKey(text: string, file: string): KeyObject {
  const flag = TLS_FLAGS.key;
  if (/-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type: 4,ENCRYPTED/.test(text))
    throw new ConfigError('encrypted private keys are not supported', {
      file,
      field: flag,
      expected: 'an unencrypted PEM private key (decrypt it with `openssl pkey`)',
      found: 'an encrypted private key',
    });
  if (!/-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----/.test(text))
    throw new ConfigError('not a PEM private key', {
      file,
      field: flag,
      expected: 'a PEM private key (-----BEGIN PRIVATE KEY-----)',
      found: describePem(text),
    });
  try {
    return createPrivateKey(text);
  } catch (e) {
    throw new ConfigError('the private key cannot be parsed', {
      file,
      field: flag,
      expected: 'a PEM private key',
      found: 'a corrupt key',
      cause: e,
    });
  }
}

/** What a file that should have been PEM of another kind holds, in words. */
function describePem(text: string): string {
  const label = /-----BEGIN ([A-Z0-9 ]+)-----/.exec(text)?.[1];
  if (label !== undefined) return `PEM ${label}`;
  return text.trim() === '' ? 'an empty file' : 'no PEM block';
}
