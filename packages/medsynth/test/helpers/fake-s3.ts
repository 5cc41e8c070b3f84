/**
 * A small S3-compatible HTTP server for tests: path-style requests (`/<bucket>/<key>`) on 127.0.0.1, objects
 * in memory. It speaks the parts of the S3 REST API a client of plain objects needs — PutObject (with
 * `If-None-Match: *`), GetObject, HeadObject, DeleteObject, CreateBucket/HeadBucket and multipart uploads
 * (Create, UploadPart, Complete, Abort) — with S3's XML error bodies (404 NoSuchKey / NoSuchBucket,
 * 412 PreconditionFailed, 403 AccessDenied…). Anything else answers 501 NotImplemented, so a client that
 * starts using another call fails loudly instead of passing by accident.
 *
 * Checks a real server makes and a test wants to see fail: requests must carry a SigV4 `Authorization`
 * header (its access key id is recorded, the signature is not verified); a signed payload hash
 * (`x-amz-content-sha256`) must match the body; aws-chunked (streaming) uploads are refused.
 *
 * Every request is recorded in arrival order (`requests`) so a test can check the order of writes, and
 * faults can be injected (`fail`) to see what a client does when a call is refused.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type FakeS3Operation =
  | 'CreateBucket'
  | 'HeadBucket'
  | 'PutObject'
  | 'GetObject'
  | 'HeadObject'
  | 'DeleteObject'
  | 'CreateMultipartUpload'
  | 'UploadPart'
  | 'CompleteMultipartUpload'
  | 'AbortMultipartUpload'
  | 'Unsupported';

export interface FakeS3Request {
  /** Arrival order, from 0. */
  readonly seq: number;
  readonly method: string;
  readonly operation: FakeS3Operation;
  readonly bucket: string;
  /** The decoded object key ('' for bucket requests). */
  readonly key: string;
  readonly query: Readonly<Record<string, string>>;
  readonly headers: IncomingHttpHeaders;
  /** From the SigV4 `Authorization` header's credential scope. */
  readonly accessKeyId: string | undefined;
  /** The status answered (0 until answered). */
  status: number;
}

export interface FakeS3Fault {
  /** Which requests fail. */
  readonly when: (req: FakeS3Request) => boolean;
  readonly status: number;
  readonly code: string;
  /** How many matching requests fail (default: all). */
  readonly times?: number;
  /** The request takes effect and only its answer is replaced by the error (a response lost on the way). */
  readonly after?: boolean;
}

interface StoredObject {
  readonly data: Buffer;
  readonly etag: string;
  readonly lastModified: Date;
  readonly contentType: string;
}

interface MultipartUpload {
  readonly bucket: string;
  readonly key: string;
  readonly contentType: string;
  readonly parts: Map<number, { data: Buffer; etag: string }>;
}

export interface FakeS3Options {
  /** Buckets that exist from the start. */
  readonly buckets?: readonly string[];
  /** Whether `If-None-Match: *` is honoured (true) or ignored like older S3-compatible servers (false). */
  readonly conditionalWrites?: boolean;
}

const md5 = (data: Uint8Array) => createHash('md5').update(data).digest('hex');
const xmlEscape = (s: string) =>
  s.replace(
    /[<>&'"]/g,
    (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[c]!,
  );

const ERROR_MESSAGES: Readonly<Record<string, string>> = {
  NoSuchKey: 'The specified key does not exist.',
  NoSuchBucket: 'The specified bucket does not exist',
  NoSuchUpload: 'The specified multipart upload does not exist.',
  PreconditionFailed: 'At least one of the pre-conditions you specified did not hold',
  AccessDenied: 'Access Denied',
  NotImplemented: 'A header or query you provided implies functionality that is not implemented.',
  InvalidPart: 'One or more of the specified parts could not be found.',
  XAmzContentSHA256Mismatch: "The provided 'x-amz-content-sha256' header does not match what was computed.",
  InternalError: 'We encountered an internal error. Please try again.',
};

export class FakeS3 {
  readonly requests: FakeS3Request[] = [];
  readonly #buckets = new Map<string, Map<string, StoredObject>>();
  readonly #uploads = new Map<string, MultipartUpload>();
  readonly #faults: { fault: FakeS3Fault; left: number }[] = [];
  readonly #conditionalWrites: boolean;
  readonly #server = createServer((req, res) => {
    this.#handle(req, res).catch((e: unknown) => {
      if (!res.headersSent) this.#sendError(res, undefined, 500, 'InternalError', String(e));
      else res.destroy();
    });
  });
  #endpoint = '';

  private constructor(options: FakeS3Options) {
    this.#conditionalWrites = options.conditionalWrites ?? true;
    for (const b of options.buckets ?? []) this.createBucket(b);
  }

  /** Starts a server on 127.0.0.1 on a free port. */
  static async start(options: FakeS3Options = {}): Promise<FakeS3> {
    const s3 = new FakeS3(options);
    await new Promise<void>((resolve, reject) => {
      s3.#server.once('error', reject);
      s3.#server.listen(0, '127.0.0.1', () => resolve());
    });
    s3.#endpoint = `http://127.0.0.1:${(s3.#server.address() as AddressInfo).port}`;
    return s3;
  }

  /** `http://127.0.0.1:<port>`. */
  get endpoint(): string {
    return this.#endpoint;
  }

  createBucket(name: string): void {
    if (!this.#buckets.has(name)) this.#buckets.set(name, new Map());
  }

  /** The keys in `bucket` that start with `prefix`, sorted. */
  keys(bucket: string, prefix = ''): string[] {
    return [...(this.#buckets.get(bucket)?.keys() ?? [])].filter((k) => k.startsWith(prefix)).sort();
  }

  getObject(bucket: string, key: string): Buffer | undefined {
    return this.#buckets.get(bucket)?.get(key)?.data;
  }

  /** Replaces an object's bytes behind the client's back (to damage it). */
  putObject(bucket: string, key: string, data: Uint8Array): void {
    const b = this.#buckets.get(bucket);
    if (b === undefined) throw new Error(`no bucket ${bucket}`);
    b.set(key, this.#object(Buffer.from(data), 'application/octet-stream'));
  }

  deleteObject(bucket: string, key: string): void {
    this.#buckets.get(bucket)?.delete(key);
  }

  /** Multipart uploads started and neither completed nor aborted. */
  get openUploads(): number {
    return this.#uploads.size;
  }

  /** Makes matching requests fail with `status` and S3 error `code`. */
  fail(fault: FakeS3Fault): void {
    this.#faults.push({ fault, left: fault.times ?? Number.POSITIVE_INFINITY });
  }

  clearFaults(): void {
    this.#faults.length = 0;
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve, reject) => this.#server.close((e) => (e ? reject(e) : resolve())));
  }

  #object(data: Buffer, contentType: string, etag = `"${md5(data)}"`): StoredObject {
    return { data, etag, lastModified: new Date(), contentType };
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://fake-s3');
    const path = url.pathname.slice(1);
    const slash = path.indexOf('/');
    const bucket = decodeURIComponent(slash < 0 ? path : path.slice(0, slash));
    const key = slash < 0 ? '' : decodeURIComponent(path.slice(slash + 1));
    const query = Object.fromEntries(url.searchParams);
    const method = req.method ?? 'GET';
    const credential = /Credential=([^/,\s]+)\//.exec(req.headers.authorization ?? '')?.[1];
    const record: FakeS3Request = {
      seq: this.requests.length,
      method,
      operation: operationOf(method, key, query, req.headers),
      bucket,
      key,
      query,
      headers: req.headers,
      accessKeyId: credential,
      status: 0,
    };
    this.requests.push(record);
    res.on('finish', () => {
      record.status = res.statusCode;
    });
    const body = await readBody(req);

    const resource = key === '' ? `/${bucket}` : `/${bucket}/${key}`;
    const error = (status: number, code: string, message?: string) =>
      this.#sendError(res, resource, status, code, message);

    if (credential === undefined) return error(403, 'AccessDenied', 'Requests must be signed (SigV4).');
    const encoding = String(req.headers['content-encoding'] ?? '');
    const payloadHash = String(req.headers['x-amz-content-sha256'] ?? '');
    if (encoding.includes('aws-chunked') || payloadHash.startsWith('STREAMING-'))
      return error(501, 'NotImplemented', 'aws-chunked uploads are not supported by this server');
    if (/^[0-9a-f]{64}$/.test(payloadHash) && createHash('sha256').update(body).digest('hex') !== payloadHash)
      return error(400, 'XAmzContentSHA256Mismatch');

    let late: FakeS3Fault | undefined;
    for (const f of this.#faults)
      if (f.left > 0 && f.fault.when(record)) {
        f.left--;
        if (f.fault.after !== true) return error(f.fault.status, f.fault.code);
        late = f.fault;
        break;
      }
    if (late === undefined) return this.#operate(record, req, body, res);
    // The request takes effect, but its answer is lost: the client sees the fault's error instead.
    this.#operate(record, req, body, new ServerResponse(req));
    return error(late.status, late.code);
  }

  /** Carries out a signed request and answers it on `res`. */
  #operate(record: FakeS3Request, req: IncomingMessage, body: Buffer, res: ServerResponse): void {
    const { bucket, key, query, method } = record;
    const resource = key === '' ? `/${bucket}` : `/${bucket}/${key}`;
    const error = (status: number, code: string, message?: string) =>
      this.#sendError(res, resource, status, code, message);
    if (record.operation === 'CreateBucket') {
      this.createBucket(bucket);
      res.writeHead(200, { Location: `/${bucket}` }).end();
      return;
    }
    const objects = this.#buckets.get(bucket);
    if (objects === undefined) return error(404, 'NoSuchBucket');
    const contentType = String(req.headers['content-type'] ?? 'application/octet-stream');
    const ifNoneMatch = this.#conditionalWrites ? req.headers['if-none-match'] : undefined;

    switch (record.operation) {
      case 'HeadBucket':
        res.writeHead(200).end();
        return;
      case 'PutObject': {
        if (ifNoneMatch === '*' && objects.has(key)) return error(412, 'PreconditionFailed');
        const obj = this.#object(body, contentType);
        objects.set(key, obj);
        res.writeHead(200, { ETag: obj.etag }).end();
        return;
      }
      case 'GetObject':
      case 'HeadObject': {
        const obj = objects.get(key);
        if (obj === undefined) return error(404, 'NoSuchKey');
        res.writeHead(200, {
          'Content-Type': obj.contentType,
          'Content-Length': String(obj.data.byteLength),
          ETag: obj.etag,
          'Last-Modified': obj.lastModified.toUTCString(),
        });
        res.end(record.operation === 'GetObject' ? obj.data : undefined);
        return;
      }
      case 'DeleteObject':
        objects.delete(key);
        res.writeHead(204).end();
        return;
      case 'CreateMultipartUpload': {
        const uploadId = randomBytes(12).toString('hex');
        this.#uploads.set(uploadId, { bucket, key, contentType, parts: new Map() });
        return sendXml(
          res,
          200,
          `<InitiateMultipartUploadResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Bucket>${xmlEscape(bucket)}</Bucket><Key>${xmlEscape(key)}</Key><UploadId>${uploadId}</UploadId></InitiateMultipartUploadResult>`,
        );
      }
      case 'UploadPart': {
        const upload = this.#uploads.get(query.uploadId ?? '');
        if (upload === undefined || upload.bucket !== bucket || upload.key !== key)
          return error(404, 'NoSuchUpload');
        const n = Number(query.partNumber);
        if (!Number.isInteger(n) || n < 1 || n > 10_000)
          return error(400, 'InvalidArgument', 'bad partNumber');
        const etag = `"${md5(body)}"`;
        upload.parts.set(n, { data: body, etag });
        res.writeHead(200, { ETag: etag }).end();
        return;
      }
      case 'CompleteMultipartUpload': {
        const upload = this.#uploads.get(query.uploadId ?? '');
        if (upload === undefined || upload.bucket !== bucket || upload.key !== key)
          return error(404, 'NoSuchUpload');
        const listed = Array.from(body.toString('utf8').matchAll(/<Part>[\s\S]*?<\/Part>/g), (m) => ({
          n: Number(/<PartNumber>(\d+)<\/PartNumber>/.exec(m[0])?.[1]),
          etag: /<ETag>([^<]*)<\/ETag>/.exec(m[0])?.[1]?.replace(/&quot;/g, '"'),
        }));
        if (listed.length === 0) return error(400, 'MalformedXML', 'no parts listed');
        const chunks: Buffer[] = [];
        let last = 0;
        for (const p of listed) {
          const part = upload.parts.get(p.n);
          if (part === undefined || part.etag !== p.etag) return error(400, 'InvalidPart');
          if (p.n <= last) return error(400, 'InvalidPartOrder', 'parts must be listed in ascending order');
          last = p.n;
          chunks.push(part.data);
        }
        if (ifNoneMatch === '*' && objects.has(key)) return error(412, 'PreconditionFailed');
        const data = Buffer.concat(chunks);
        const etag = `"${md5(Buffer.from(listed.map((p) => p.etag!.replace(/"/g, '')).join(''), 'hex'))}-${listed.length}"`;
        objects.set(key, this.#object(data, upload.contentType, etag));
        this.#uploads.delete(query.uploadId!);
        return sendXml(
          res,
          200,
          `<CompleteMultipartUploadResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Location>${xmlEscape(`${this.#endpoint}${resource}`)}</Location><Bucket>${xmlEscape(bucket)}</Bucket><Key>${xmlEscape(key)}</Key><ETag>${xmlEscape(etag)}</ETag></CompleteMultipartUploadResult>`,
        );
      }
      case 'AbortMultipartUpload':
        if (!this.#uploads.delete(query.uploadId ?? '')) return error(404, 'NoSuchUpload');
        res.writeHead(204).end();
        return;
      default:
        return error(501, 'NotImplemented', `${method} ${req.url ?? ''} is not implemented`);
    }
  }

  #sendError(
    res: ServerResponse,
    resource: string | undefined,
    status: number,
    code: string,
    message = ERROR_MESSAGES[code] ?? code,
  ): void {
    const requestId = randomBytes(8).toString('hex').toUpperCase();
    if (res.req.method === 'HEAD') {
      res.writeHead(status, { 'x-amz-request-id': requestId }).end();
      return;
    }
    sendXml(
      res,
      status,
      `<Error><Code>${xmlEscape(code)}</Code><Message>${xmlEscape(message)}</Message>${resource !== undefined ? `<Resource>${xmlEscape(resource)}</Resource>` : ''}<RequestId>${requestId}</RequestId></Error>`,
      { 'x-amz-request-id': requestId },
    );
  }
}

function operationOf(
  method: string,
  key: string,
  query: Readonly<Record<string, string>>,
  headers: IncomingHttpHeaders,
): FakeS3Operation {
  if (key === '') {
    if (method === 'PUT') return 'CreateBucket';
    if (method === 'HEAD') return 'HeadBucket';
    return 'Unsupported'; // ListObjects, DeleteObjects…
  }
  switch (method) {
    case 'PUT':
      if ('partNumber' in query && 'uploadId' in query) return 'UploadPart';
      return headers['x-amz-copy-source'] === undefined ? 'PutObject' : 'Unsupported';
    case 'GET':
      return Object.keys(query).some((q) => q !== 'x-id') ? 'Unsupported' : 'GetObject';
    case 'HEAD':
      return 'HeadObject';
    case 'DELETE':
      return 'uploadId' in query ? 'AbortMultipartUpload' : 'DeleteObject';
    case 'POST':
      if ('uploads' in query) return 'CreateMultipartUpload';
      if ('uploadId' in query) return 'CompleteMultipartUpload';
      return 'Unsupported';
    default:
      return 'Unsupported';
  }
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

function sendXml(
  res: ServerResponse,
  status: number,
  xml: string,
  headers: Record<string, string> = {},
): void {
  const body = Buffer.from(`<?xml version="1.0" encoding="UTF-8"?>\n${xml}`);
  res
    .writeHead(status, {
      'Content-Type': 'application/xml',
      'Content-Length': String(body.byteLength),
      ...headers,
    })
    .end(body);
}
