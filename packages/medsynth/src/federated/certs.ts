/**
 * Test certificates for federated training over gRPC with mutual TLS: a private certificate authority (CA), a
 * server certificate for the coordinator and one client certificate per site, all ECDSA P-256 and signed by the
 * CA. `makeCertificates(dir, { sites })` writes these PEM files into `dir`:
 *
 *   ca.crt              the CA certificate. Public: every party gets a copy and trusts only certificates it signed
 *                       (the coordinator accepts a site only if the CA signed its certificate, a site accepts the
 *                       coordinator only if the CA signed its certificate).
 *   ca.key              the CA's private key (mode 0600). Signs new site certificates (`addSiteCertificate`); keep it
 *                       off the sites and the coordinator, e.g. with whoever runs the federation.
 *   coordinator.crt     the coordinator's server certificate (serverAuth; SubjectAltName = the `hosts`, by default
 *                       127.0.0.1 and localhost: sites must dial the coordinator by one of these names).
 *   coordinator.key     its private key (mode 0600); stays on the coordinator's machine.
 *   site-<name>.crt     the client certificate of site <name> (clientAuth; CN = <name>, the identity the
 *                       coordinator sees for that site).
 *   site-<name>.key     its private key (mode 0600); goes to that site only.
 *
 * Use them as:
 *
 *   medsynth federated serve --tls-cert coordinator.crt --tls-key coordinator.key --ca ca.crt
 *   medsynth federated site  --tls-cert site-a.crt --tls-key site-a.key --ca ca.crt
 *
 * These are for tests and closed networks: one CA made on the spot, no revocation list. Private keys are written
 * atomically (temporary file created with mode 0600, flushed, renamed over the target); nothing is overwritten
 * unless `force` is set, and every certificate is made before the first file is written.
 */
import {
  createPrivateKey,
  KeyObject,
  X509Certificate as NodeX509Certificate,
  randomBytes,
  webcrypto,
} from 'node:crypto';
import { lstat, mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { isIP } from 'node:net';
import { basename, dirname, join } from 'node:path';
import type * as X509 from '@peculiar/x509';
import { ConfigError } from '../runtime/errors.js';
import { errnoCode, fsyncDir, withFileContext, writeFileAtomic } from '../runtime/fs.js';

/** @peculiar/x509's module object (loaded on first use, see `loadX509`). */
type X509Module = typeof X509;
let x509Module: Promise<X509Module> | undefined;

/**
 * Loads @peculiar/x509 with Node's webcrypto as its crypto provider (lazily, so importing this module for
 * `isSiteName` costs nothing). The library, through tsyringe, needs the Reflect metadata polyfill loaded first.
 */
function loadX509(): Promise<X509Module> {
  x509Module ??= (async () => {
    await import('reflect-metadata');
    const x509 = await import('@peculiar/x509');
    x509.cryptoProvider.set(webcrypto);
    return x509;
  })();
  return x509Module;
}

/** A certificate file and its private key file. */
export interface CertificatePair {
  readonly cert: string;
  readonly key: string;
}

/** The paths `makeCertificates` wrote. */
export interface CertificateFiles {
  readonly dir: string;
  readonly ca: CertificatePair;
  readonly coordinator: CertificatePair;
  /** By site name. */
  readonly sites: Readonly<Record<string, CertificatePair>>;
}

export interface MakeCertificatesOptions {
  /** Site names: letters, digits, `_` and `-` (each becomes the CN of its client certificate). */
  readonly sites: readonly string[];
  /** IP addresses and DNS names the coordinator is reached by (its SubjectAltName). Default 127.0.0.1, localhost. */
  readonly hosts?: readonly string[];
  /** Days the certificates are valid. Default 365. */
  readonly days?: number;
  /** Overwrite existing files. Default false: an existing file is a ConfigError naming it. */
  readonly force?: boolean;
}

export interface AddSiteCertificateOptions {
  /** Days the certificate is valid (never past the CA's own end). Default 365. */
  readonly days?: number;
  /** Overwrite the site's existing files. */
  readonly force?: boolean;
}

/** What a site name may hold: it is a file name part and a certificate CN. */
export const SITE_NAME_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

/** Whether `name` is a valid site name (see `SITE_NAME_PATTERN`). */
export function isSiteName(name: string): boolean {
  return SITE_NAME_PATTERN.test(name);
}

export const DEFAULT_HOSTS: readonly string[] = Object.freeze(['127.0.0.1', 'localhost']);
const DEFAULT_DAYS = 365;
const DAY_MS = 86_400_000;
/** notBefore is set this far back, so that machines whose clocks lag a little accept a fresh certificate. */
const CLOCK_SKEW_MS = 5 * 60_000;

const KEY_ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIGNING_ALGORITHM = { name: 'ECDSA', hash: 'SHA-256' } as const;
/** The ECDSA curves a CA key read from disk may use, by Node's curve name. */
const CA_CURVES: Readonly<Record<string, { namedCurve: string; hash: string }>> = {
  prime256v1: { namedCurve: 'P-256', hash: 'SHA-256' },
  secp384r1: { namedCurve: 'P-384', hash: 'SHA-384' },
  secp521r1: { namedCurve: 'P-521', hash: 'SHA-512' },
};

/** The files of site `name` in `dir`. */
export function siteCertificateFiles(dir: string, name: string): CertificatePair {
  return { cert: join(dir, `site-${name}.crt`), key: join(dir, `site-${name}.key`) };
}

/**
 * Makes a new CA, a coordinator certificate and one client certificate per site in `dir` (see the module
 * comment), and returns their paths.
 */
export async function makeCertificates(
  dir: string,
  options: MakeCertificatesOptions,
): Promise<CertificateFiles> {
  const sites = checkSites(options.sites);
  const hosts = checkHosts(options.hosts ?? DEFAULT_HOSTS);
  const days = checkDays(options.days ?? DEFAULT_DAYS);
  const files: CertificateFiles = {
    dir,
    ca: { cert: join(dir, 'ca.crt'), key: join(dir, 'ca.key') },
    coordinator: { cert: join(dir, 'coordinator.crt'), key: join(dir, 'coordinator.key') },
    sites: Object.fromEntries(sites.map((s) => [s, siteCertificateFiles(dir, s)])),
  };
  const pairs = [files.ca, files.coordinator, ...Object.values(files.sites)];
  if (options.force !== true) await refuseExisting(pairs);

  const x509 = await loadX509();
  const notBefore = new Date(Date.now() - CLOCK_SKEW_MS);
  const notAfter = new Date(Date.now() + days * DAY_MS);
  const caKeys = await newKeyPair();
  const caCert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serialNumber(),
    name: `CN=medsynth federated test CA ${randomBytes(4).toString('hex')}`,
    notBefore,
    notAfter,
    keys: caKeys,
    signingAlgorithm: SIGNING_ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature,
        true,
      ),
      await x509.SubjectKeyIdentifierExtension.create(caKeys.publicKey),
    ],
  });
  const ca: Issuer = { cert: caCert, key: caKeys.privateKey, signingAlgorithm: SIGNING_ALGORITHM };

  const out: { file: string; pem: string; secret: boolean }[] = [
    { file: files.ca.cert, pem: pem(caCert), secret: false },
    { file: files.ca.key, pem: keyPem(caKeys.privateKey), secret: true },
  ];
  const names = hosts.map((h): X509.JsonGeneralName => ({ type: isIP(h) !== 0 ? 'ip' : 'dns', value: h }));
  const coordinator = await issue(x509, ca, 'medsynth coordinator', 'serverAuth', notBefore, notAfter, names);
  out.push({ file: files.coordinator.cert, pem: coordinator.cert, secret: false });
  out.push({ file: files.coordinator.key, pem: coordinator.key, secret: true });
  for (const site of sites) {
    const made = await issue(x509, ca, site, 'clientAuth', notBefore, notAfter);
    const pair = siteCertificateFiles(dir, site);
    out.push(
      { file: pair.cert, pem: made.cert, secret: false },
      { file: pair.key, pem: made.key, secret: true },
    );
  }
  await mkdir(dir, { recursive: true });
  for (const { file, pem: text, secret } of out) await writePem(file, text, secret);
  return files;
}

/**
 * Signs a client certificate for one more site with the CA in `dir` (`ca.crt` and `ca.key`, as `makeCertificates`
 * wrote them) and writes `site-<name>.crt` and `site-<name>.key` next to them.
 */
export async function addSiteCertificate(
  dir: string,
  name: string,
  options: AddSiteCertificateOptions = {},
): Promise<CertificatePair> {
  checkSites([name]);
  const days = checkDays(options.days ?? DEFAULT_DAYS);
  const pair = siteCertificateFiles(dir, name);
  if (options.force !== true) await refuseExisting([pair]);
  const x509 = await loadX509();
  const ca = await loadIssuer(x509, join(dir, 'ca.crt'), join(dir, 'ca.key'));
  const now = Date.now();
  if (ca.cert.notAfter.getTime() <= now)
    throw new ConfigError('the CA certificate has expired; make a new set with makeCertificates', {
      file: join(dir, 'ca.crt'),
      found: `valid until ${ca.cert.notAfter.toISOString()}`,
    });
  const notBefore = new Date(Math.max(now - CLOCK_SKEW_MS, ca.cert.notBefore.getTime()));
  const notAfter = new Date(Math.min(now + days * DAY_MS, ca.cert.notAfter.getTime()));
  const made = await issue(x509, ca, name, 'clientAuth', notBefore, notAfter);
  await writePem(pair.cert, made.cert, false);
  await writePem(pair.key, made.key, true);
  return pair;
}

interface Issuer {
  readonly cert: X509.X509Certificate;
  readonly key: webcrypto.CryptoKey;
  readonly signingAlgorithm: { readonly name: string; readonly hash: string };
}

/** A new key pair and a certificate for it signed by `ca`, both as PEM. */
async function issue(
  x509: X509Module,
  ca: Issuer,
  commonName: string,
  usage: 'serverAuth' | 'clientAuth',
  notBefore: Date,
  notAfter: Date,
  altNames?: X509.JsonGeneralNames,
): Promise<{ cert: string; key: string }> {
  const keys = await newKeyPair();
  const caKeyId = ca.cert.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId;
  const extensions: X509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
    new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage[usage]], false),
    await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    // Taken from the CA's own SubjectKeyIdentifier: a computed one could differ and make OpenSSL miss the issuer.
    ...(caKeyId !== undefined ? [new x509.AuthorityKeyIdentifierExtension(caKeyId)] : []),
    ...(altNames !== undefined ? [new x509.SubjectAlternativeNameExtension(altNames, false)] : []),
  ];
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serialNumber(),
    subject: `CN=${commonName}`,
    issuer: ca.cert.subject,
    notBefore,
    notAfter,
    publicKey: keys.publicKey,
    signingKey: ca.key,
    signingAlgorithm: ca.signingAlgorithm,
    extensions,
  });
  return { cert: pem(cert), key: keyPem(keys.privateKey) };
}

/** Reads a CA certificate and its private key (ECDSA) for signing, checking that they belong together. */
async function loadIssuer(x509: X509Module, certFile: string, keyFile: string): Promise<Issuer> {
  const certText = await readCaFile(certFile);
  const keyText = await readCaFile(keyFile);
  let cert: X509.X509Certificate;
  let nodeCert: NodeX509Certificate;
  try {
    cert = new x509.X509Certificate(certText);
    nodeCert = new NodeX509Certificate(certText);
  } catch (e) {
    throw new ConfigError('not a PEM certificate', {
      file: certFile,
      expected: 'the CA certificate (PEM)',
      cause: e,
    });
  }
  if (!nodeCert.ca)
    throw new ConfigError('not a CA certificate', {
      file: certFile,
      expected: 'basicConstraints CA:TRUE',
      found: nodeCert.subject,
    });
  let key: KeyObject;
  try {
    key = createPrivateKey(keyText);
  } catch (e) {
    throw new ConfigError('not a PEM private key', {
      file: keyFile,
      expected: "the CA's private key",
      cause: e,
    });
  }
  if (!nodeCert.checkPrivateKey(key))
    throw new ConfigError(`${keyFile} is not the private key of ${certFile}`, {
      file: keyFile,
      expected: `the private key of ${certFile}`,
      found: 'a key of another certificate',
    });
  const curve = key.asymmetricKeyType === 'ec' ? key.asymmetricKeyDetails?.namedCurve : undefined;
  const params = curve !== undefined ? CA_CURVES[curve] : undefined;
  if (params === undefined)
    throw new ConfigError('unsupported CA key type', {
      file: keyFile,
      expected: 'an ECDSA key on P-256, P-384 or P-521',
      found: `${key.asymmetricKeyType ?? 'unknown'}${curve !== undefined ? ` ${curve}` : ''}`,
    });
  const der = key.export({ type: 'pkcs8', format: 'der' });
  const signingKey = await webcrypto.subtle.importKey(
    'pkcs8',
    der,
    { name: 'ECDSA', namedCurve: params.namedCurve },
    false,
    ['sign'],
  );
  return { cert, key: signingKey, signingAlgorithm: { name: 'ECDSA', hash: params.hash } };
}

async function readCaFile(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (e) {
    throw new ConfigError(`cannot read the CA file; make the CA first with makeCertificates`, {
      file,
      found: errnoCode(e) ?? String(e),
      cause: e,
    });
  }
}

function checkSites(sites: readonly string[]): string[] {
  const seen = new Set<string>();
  for (const site of sites) {
    if (!isSiteName(site))
      throw new ConfigError(`invalid site name ${JSON.stringify(site)}`, {
        field: '--sites',
        expected: 'letters, digits, _ and - (1 to 64 characters)',
        found: JSON.stringify(site),
      });
    if (seen.has(site))
      throw new ConfigError(`site ${site} is listed twice`, { field: '--sites', found: sites.join(',') });
    seen.add(site);
  }
  return [...seen];
}

/** A DNS name (labels of letters, digits and inner hyphens), optionally a wildcard `*.` in front. */
const DNS_NAME = /^(\*\.)?[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$/;

function checkHosts(hosts: readonly string[]): string[] {
  if (hosts.length === 0)
    throw new ConfigError('the coordinator needs at least one host name or address', {
      field: '--hosts',
      expected: 'e.g. 127.0.0.1,localhost',
      found: 'none',
    });
  for (const host of hosts)
    if (isIP(host) === 0 && !DNS_NAME.test(host))
      throw new ConfigError(`invalid host ${JSON.stringify(host)}`, {
        field: '--hosts',
        expected: 'IP addresses or DNS names',
        found: JSON.stringify(host),
      });
  return [...new Set(hosts)];
}

function checkDays(days: number): number {
  if (!Number.isInteger(days) || days < 1 || days > 36_500)
    throw new ConfigError('invalid certificate lifetime', {
      field: '--days',
      expected: 'a whole number of days from 1 to 36500',
      found: String(days),
    });
  return days;
}

/** Refuses (ConfigError naming the first one) if any of the files already exists. */
async function refuseExisting(pairs: readonly CertificatePair[]): Promise<void> {
  for (const { cert, key } of pairs)
    for (const file of [cert, key]) {
      let exists = true;
      try {
        await lstat(file);
      } catch (e) {
        if (errnoCode(e) !== 'ENOENT') throw e;
        exists = false;
      }
      if (exists)
        throw new ConfigError('the file already exists; pass --force to replace it', {
          file,
          field: '--force',
        });
    }
}

async function newKeyPair(): Promise<webcrypto.CryptoKeyPair> {
  return await webcrypto.subtle.generateKey(KEY_ALGORITHM, true, ['sign', 'verify']);
}

/** A positive 128-bit serial number, as hex (the top bit clear, the next set: always 16 bytes of DER). */
function serialNumber(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0]! & 0x7f) | 0x40;
  return bytes.toString('hex');
}

function pem(cert: X509.X509Certificate): string {
  const text = cert.toString('pem');
  return text.endsWith('\n') ? text : `${text}\n`;
}

function keyPem(key: webcrypto.CryptoKey): string {
  return KeyObject.from(key).export({ type: 'pkcs8', format: 'pem' }) as string;
}

async function writePem(file: string, text: string, secret: boolean): Promise<void> {
  if (secret) await writePrivateKeyAtomic(file, text);
  else await writeFileAtomic(file, text, `writing the certificate ${basename(file)}`);
}

/**
 * `writeFileAtomic` for a private key: the temporary file is created with mode 0600 (so the key is never readable
 * by others, not even for a moment) and the mode is set again after creation (a umask could have taken bits off).
 */
async function writePrivateKeyAtomic(file: string, text: string): Promise<void> {
  await withFileContext(`writing the private key ${basename(file)}`, file, async () => {
    const dir = dirname(file);
    await mkdir(dir, { recursive: true });
    const tmp = join(dir, `.${basename(file)}.${process.pid}-${randomBytes(6).toString('hex')}.tmp`);
    try {
      const fh = await open(tmp, 'wx', 0o600);
      try {
        await fh.chmod(0o600);
        await fh.writeFile(text);
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(tmp, file);
    } catch (e) {
      await rm(tmp, { force: true });
      throw e;
    }
    await fsyncDir(dir);
  });
}
