// Fetches a blob from a URL written by a stranger (docs/security.md "Media fetching"). The URL,
// every address its host resolves to, and every redirect are checked before a byte is sent; the
// connection goes to the address that was checked (no second DNS lookup a rebinding server could
// answer differently); the body is counted, hashed and written to a temporary file as it streams
// and only renamed into place when its sha256 is the one expected.
//
// Address rule: only global unicast addresses (ipaddr.js's `unicast` range) are reachable by
// default. Loopback needs `allowLoopback`, RFC 1918 / CGNAT / unique-local need `allowPrivate`;
// link-local, cloud metadata, multicast, broadcast, unspecified, reserved and the IPv6 ranges
// that embed an IPv4 address (NAT64, 6to4, Teredo) are never reachable. IPv4-mapped IPv6
// addresses are judged as the IPv4 address they map.
import http from 'node:http';
import https from 'node:https';
import { isIP, type LookupFunction } from 'node:net';
import { lookup as dnsLookup } from 'node:dns/promises';
import { createHash, randomBytes, type Hash } from 'node:crypto';
import { mkdir, open, rename, rm, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import ipaddr from 'ipaddr.js';

export type FetchErrorCode =
  | 'bad-scheme'
  | 'bad-url'
  | 'host-refused'
  | 'dns'
  | 'blocked-address'
  | 'network'
  | 'tls'
  | 'timeout'
  | 'aborted'
  | 'too-many-redirects'
  | 'http-status'
  | 'mime-refused'
  | 'too-large'
  | 'truncated'
  | 'hash-mismatch';

export class FetchError extends Error {
  constructor(
    readonly code: FetchErrorCode,
    message: string,
    /** The URL of the hop that failed (after redirects). */
    readonly url: string,
  ) {
    super(`${code}: ${message} (${url})`);
    this.name = 'FetchError';
  }
}

export interface ResolvedAddress {
  address: string;
  family: 4 | 6;
}

/** Every address a host name resolves to. */
export type Resolver = (hostname: string) => Promise<ResolvedAddress[]>;

/** The fetch rules; each field is meant to be one config key (`[media]` section). */
export interface FetchPolicy {
  /** Largest blob in bytes, counted while streaming (Content-Length is only an early refusal). */
  maxBlobBytes: number;
  /** Redirects followed per fetch; one more fails with `too-many-redirects`. */
  maxRedirects: number;
  /** Whole fetch, all hops, from the first connect to the last byte. */
  timeoutMs: number;
  /** Longest wait for the next bytes (connect, headers or body); a slow-drip server hits `timeoutMs` instead. */
  idleTimeoutMs: number;
  /** Let hosts resolve to loopback (127/8, ::1). Tests only. */
  allowLoopback: boolean;
  /** Let hosts resolve to RFC 1918, CGNAT (100.64/10) and unique-local (fc00::/7) addresses. */
  allowPrivate: boolean;
  /** Address ranges (CIDR, e.g. `10.1.2.3/32`) that may be connected to whatever their range: an operator's own media server. */
  allowAddresses: readonly string[];
  /** If not empty, only these hosts and their subdomains are fetched from. */
  allowHosts: readonly string[];
  /** These hosts and their subdomains are never fetched from (checked first). */
  denyHosts: readonly string[];
  /** If not empty, the response's Content-Type must match one (`image/*`, `video/mp4`, `*\/*`). */
  mimeAllow: readonly string[];
}

export const DEFAULT_FETCH_POLICY: FetchPolicy = {
  maxBlobBytes: 100 * 1024 ** 2,
  maxRedirects: 3,
  timeoutMs: 120_000,
  idleTimeoutMs: 15_000,
  allowLoopback: false,
  allowPrivate: false,
  allowAddresses: [],
  allowHosts: [],
  denyHosts: [],
  mimeAllow: [],
};

export interface FetchRequest {
  url: string;
  /** Expected sha256, lowercase hex: the blob is kept only if its bytes hash to it. */
  sha256: string;
  /** Where the blob goes; a temporary file next to it takes the bytes until they are verified. */
  dest: string;
  /** Called with each chunk's size before it is taken; the fetch waits for it (a bandwidth budget). */
  pace?: (bytes: number) => Promise<void> | void;
  /** Resolves host names (default: the system resolver, every address). Tests inject one. */
  resolve?: Resolver;
  signal?: AbortSignal;
}

export interface FetchResult {
  /** The URL asked for (before redirects). */
  source: string;
  sha256: string;
  bytes: number;
  /** The response's media type (no parameters), if it sent one. */
  mime: string | null;
  /** The URL the bytes came from, after redirects. */
  url: string;
  redirects: number;
  /** The address connected to for the last hop. */
  address: string;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
/** Range requests after broken connections, per fetch. */
const MAX_RESUMES = 3;
/** Cloud metadata endpoints that sit in ranges `allowPrivate` opens. */
const METADATA = new Set(['169.254.169.254', 'fd00:ec2:0:0:0:0:0:254', '100.100.100.200']);
const PRIVATE_RANGES = new Set(['private', 'carrierGradeNat', 'uniqueLocal']);

export const systemResolver: Resolver = async (hostname) => {
  const all = await dnsLookup(hostname, { all: true, verbatim: true });
  return all.map((a) => ({ address: a.address, family: a.family === 6 ? 6 : 4 }));
};

type Cidr = [ipaddr.IPv4 | ipaddr.IPv6, number];
const parsedAllow = new WeakMap<readonly string[], Cidr[]>();

/** The policy's CIDR list, parsed once; a bad entry is a RangeError that names it. */
function allowedRanges(list: readonly string[]): Cidr[] {
  let out = parsedAllow.get(list);
  if (out) return out;
  out = list.map((cidr) => {
    try {
      return ipaddr.parseCIDR(cidr);
    } catch {
      throw new RangeError(`media allowAddresses: ${JSON.stringify(cidr)} is not an address range like 10.1.2.3/32 or fd12::/64`);
    }
  });
  parsedAllow.set(list, out);
  return out;
}

/** Throws a RangeError naming the first field of `policy` that cannot work. */
export function checkFetchPolicy(policy: FetchPolicy): void {
  for (const k of ['maxBlobBytes', 'timeoutMs', 'idleTimeoutMs'] as const) {
    if (!Number.isSafeInteger(policy[k]) || policy[k] < 1) throw new RangeError(`media ${k} must be a positive integer, not ${policy[k]}`);
  }
  if (!Number.isSafeInteger(policy.maxRedirects) || policy.maxRedirects < 0)
    throw new RangeError(`media maxRedirects must be an integer ≥ 0, not ${policy.maxRedirects}`);
  allowedRanges(policy.allowAddresses);
}

/** Why an address may not be connected to (its range name), or null if it may. */
export function refusedRange(
  address: string,
  policy: Pick<FetchPolicy, 'allowLoopback' | 'allowPrivate' | 'allowAddresses'>,
): string | null {
  if (!ipaddr.isValid(address)) return 'invalid';
  const ip = ipaddr.process(address);
  for (const [net, bits] of allowedRanges(policy.allowAddresses)) {
    if (net.kind() === ip.kind() && ip.match(net, bits)) return null;
  }
  if (METADATA.has(ip.toNormalizedString())) return 'metadata';
  const range = ip.range();
  if (range === 'unicast') return null;
  if (range === 'loopback' && policy.allowLoopback) return null;
  if (PRIVATE_RANGES.has(range) && policy.allowPrivate) return null;
  return range;
}

/** Whether `host` is one of `list` or a subdomain of one. */
export function hostListed(host: string, list: readonly string[]): boolean {
  for (const raw of list) {
    const e = raw.toLowerCase().replace(/\.$/, '');
    if (host === e || host.endsWith('.' + e)) return true;
  }
  return false;
}

export function mimeAllowed(mime: string, allow: readonly string[]): boolean {
  for (const pattern of allow) {
    const p = pattern.toLowerCase();
    if (p === '*/*' || p === mime) return true;
    if (p.endsWith('/*') && mime.startsWith(p.slice(0, -1))) return true;
  }
  return false;
}

/** Fetches `req.url` into `req.dest` under `policy`; throws FetchError and leaves nothing behind on any refusal. */
export async function fetchBlob(req: FetchRequest, policy: FetchPolicy): Promise<FetchResult> {
  const sha256 = req.sha256.toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(sha256)) throw new FetchError('bad-url', 'expected sha256 is not 64 hex digits', req.url);
  checkFetchPolicy(policy);
  const f = new Fetch(req, policy, sha256);
  try {
    return await f.run();
  } finally {
    f.stop();
  }
}

class Fetch {
  private url: string;
  private readonly tmp: string;
  private current: http.ClientRequest | http.IncomingMessage | null = null;
  private failure: FetchError | null = null;
  private readonly total: NodeJS.Timeout;
  private idle: NodeJS.Timeout | null = null;
  /** Rejects with the failure, so waits that are not on a socket (DNS, pacing) end at a timeout too. */
  private readonly failed: Promise<never>;
  private rejectFailed: (err: FetchError) => void = () => {};
  private readonly onAbort = () => this.fail(new FetchError('aborted', 'stopped by the caller', this.url));

  constructor(
    private readonly req: FetchRequest,
    private readonly policy: FetchPolicy,
    private readonly sha256: string,
  ) {
    this.url = req.url;
    this.tmp = `${req.dest}.${randomBytes(6).toString('hex')}.part`;
    this.failed = new Promise<never>((_, reject) => (this.rejectFailed = reject));
    this.failed.catch(() => {});
    this.total = setTimeout(
      () => this.fail(new FetchError('timeout', `not done after ${policy.timeoutMs} ms`, this.url)),
      policy.timeoutMs,
    );
    req.signal?.addEventListener('abort', this.onAbort, { once: true });
    if (req.signal?.aborted) this.onAbort();
  }

  stop(): void {
    clearTimeout(this.total);
    this.disarmIdle();
    this.req.signal?.removeEventListener('abort', this.onAbort);
  }

  async run(): Promise<FetchResult> {
    for (let redirects = 0; ; redirects++) {
      const target = this.checkUrl(this.url);
      const address = await this.pick(target.hostname);
      const res = await this.request(target, address);
      if (REDIRECTS.has(res.statusCode ?? 0) && res.headers.location !== undefined) {
        res.destroy();
        if (redirects >= this.policy.maxRedirects)
          throw new FetchError('too-many-redirects', `more than ${this.policy.maxRedirects} redirects`, this.url);
        let next: URL;
        try {
          next = new URL(res.headers.location, this.url);
        } catch {
          throw new FetchError('bad-url', `unreadable redirect location ${JSON.stringify(res.headers.location.slice(0, 200))}`, this.url);
        }
        this.url = next.href;
        continue;
      }
      return { ...(await this.body(res)), source: this.req.url, url: this.url, redirects, address: address.address };
    }
  }

  private fail(err: FetchError): void {
    if (this.failure !== null) return;
    this.failure = err;
    this.rejectFailed(err);
    this.current?.destroy(err);
  }

  private check(): void {
    if (this.failure !== null) throw this.failure;
  }

  private armIdle(): void {
    this.disarmIdle();
    this.idle = setTimeout(
      () => this.fail(new FetchError('timeout', `no bytes for ${this.policy.idleTimeoutMs} ms`, this.url)),
      this.policy.idleTimeoutMs,
    );
  }

  private disarmIdle(): void {
    if (this.idle !== null) clearTimeout(this.idle);
    this.idle = null;
  }

  private checkUrl(raw: string): URL {
    let u: URL;
    try {
      u = new URL(raw);
    } catch {
      throw new FetchError('bad-url', 'not a URL', raw.slice(0, 300));
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:')
      throw new FetchError('bad-scheme', `scheme ${u.protocol} is not http or https`, raw.slice(0, 300));
    if (u.username !== '' || u.password !== '') throw new FetchError('bad-url', 'URL carries credentials', raw.slice(0, 300));
    const host = hostOf(u);
    if (hostListed(host, this.policy.denyHosts)) throw new FetchError('host-refused', `host ${host} is denied`, raw);
    if (this.policy.allowHosts.length > 0 && !hostListed(host, this.policy.allowHosts))
      throw new FetchError('host-refused', `host ${host} is not in the allowed hosts`, raw);
    return u;
  }

  /** Resolves the host and returns the address to connect to; refuses the host if any address it has is refused. */
  private async pick(hostname: string): Promise<ResolvedAddress> {
    const host = hostname.startsWith('[') ? hostname.slice(1, -1) : hostname;
    let addrs: ResolvedAddress[];
    const literal = isIP(host);
    if (literal !== 0) addrs = [{ address: host, family: literal === 6 ? 6 : 4 }];
    else {
      try {
        addrs = await Promise.race([(this.req.resolve ?? systemResolver)(host), this.failed]);
      } catch (err) {
        this.check();
        throw new FetchError('dns', `cannot resolve ${host}: ${(err as Error).message}`, this.url);
      }
      this.check();
      if (addrs.length === 0) throw new FetchError('dns', `${host} has no address`, this.url);
    }
    // One refused address refuses the host: a name that answers both public and private
    // addresses is how a rebinding attack starts.
    for (const a of addrs) {
      const why = refusedRange(a.address, this.policy);
      if (why !== null) throw new FetchError('blocked-address', `${host} resolves to ${a.address} (${why})`, this.url);
    }
    return addrs[0]!;
  }

  private request(u: URL, pinned: ResolvedAddress, extra: Record<string, string> = {}): Promise<http.IncomingMessage> {
    this.check();
    const lookup: LookupFunction = (_hostname, options, cb) => {
      if (options.all) (cb as unknown as (e: null, a: ResolvedAddress[]) => void)(null, [pinned]);
      else cb(null, pinned.address, pinned.family);
    };
    const mod = u.protocol === 'https:' ? https : http;
    return new Promise((resolve, reject) => {
      const r = mod.request(
        u,
        {
          method: 'GET',
          agent: false,
          lookup,
          headers: { accept: '*/*', 'accept-encoding': 'identity', 'user-agent': 'nostr-bt media archiver', ...extra },
        },
        (res) => {
          // Errors reach the body loop through the iterator; without a listener a destroy
          // between the headers and the loop would be an uncaught 'error'.
          res.on('error', () => {});
          this.current = res;
          resolve(res);
        },
      );
      this.current = r;
      this.armIdle();
      r.on('error', (err: NodeJS.ErrnoException) => {
        if (this.failure) return reject(this.failure);
        // Certificate and handshake failures (node gives them OpenSSL's codes or ERR_TLS_* / ERR_SSL_*).
        const tls = typeof err.code === 'string' && /CERT|TLS|SSL/.test(err.code);
        reject(new FetchError(tls ? 'tls' : 'network', err.message, this.url));
      });
      r.end();
    });
  }

  private async body(first: http.IncomingMessage): Promise<{ sha256: string; bytes: number; mime: string | null }> {
    const status = first.statusCode ?? 0;
    if (status !== 200) {
      first.destroy();
      throw new FetchError('http-status', `HTTP ${status}`, this.url);
    }
    const ct = first.headers['content-type'];
    const mime = ct === undefined ? null : ct.split(';')[0]!.trim().toLowerCase();
    if (this.policy.mimeAllow.length > 0 && (mime === null || !mimeAllowed(mime, this.policy.mimeAllow))) {
      first.destroy();
      throw new FetchError('mime-refused', `Content-Type ${mime ?? '(none)'} is not allowed`, this.url);
    }
    const clHeader = first.headers['content-length'];
    const declared = clHeader === undefined ? null : Number(clHeader);
    if (declared !== null && declared > this.policy.maxBlobBytes) {
      first.destroy();
      throw new FetchError('too-large', `Content-Length ${declared} is over ${this.policy.maxBlobBytes}`, this.url);
    }
    // A dropped connection is picked up where it broke only if the server said it takes ranges
    // and the total is known (the hash checks the joined bytes in the end either way).
    const resumable = declared !== null && first.headers['accept-ranges'] === 'bytes';
    await mkdir(dirname(this.req.dest), { recursive: true });
    let fh: FileHandle | null = await open(this.tmp, 'wx', 0o644);
    try {
      const hash = createHash('sha256');
      const progress = { bytes: 0 };
      for (let res = first, resumes = 0; ; ) {
        try {
          await this.stream(res, fh, hash, progress);
          break;
        } catch (err) {
          if (!(err instanceof FetchError) || err.code !== 'truncated' || !resumable || resumes >= MAX_RESUMES || progress.bytes === 0)
            throw err;
        }
        resumes++;
        res = await this.resume(progress.bytes, declared);
      }
      this.check();
      const bytes = progress.bytes;
      if (declared !== null && bytes !== declared) throw new FetchError('truncated', `got ${bytes} of ${declared} bytes`, this.url);
      const got = hash.digest('hex');
      if (got !== this.sha256) throw new FetchError('hash-mismatch', `bytes hash to ${got}, expected ${this.sha256}`, this.url);
      await fh.close();
      fh = null;
      await rename(this.tmp, this.req.dest);
      return { sha256: got, bytes, mime };
    } catch (err) {
      await fh?.close();
      fh = null;
      await rm(this.tmp, { force: true });
      throw err;
    } finally {
      await fh?.close();
    }
  }

  /** Takes one response's body into the file and the hash; a connection that breaks is `truncated`. */
  private async stream(res: http.IncomingMessage, fh: FileHandle, hash: Hash, progress: { bytes: number }): Promise<void> {
    const taken = progress.bytes;
    try {
      this.armIdle();
      for await (const chunk of res as AsyncIterable<Buffer>) {
        this.disarmIdle();
        if (progress.bytes + chunk.length > this.policy.maxBlobBytes)
          throw new FetchError('too-large', `body passed ${this.policy.maxBlobBytes} bytes`, this.url);
        if (this.req.pace) await Promise.race([this.req.pace(chunk.length), this.failed]);
        this.check();
        hash.update(chunk);
        await fh.write(chunk);
        progress.bytes += chunk.length;
        this.check();
        this.armIdle();
      }
    } catch (err) {
      if (err instanceof FetchError) throw err;
      throw (
        this.failure ??
        new FetchError(
          'truncated',
          `connection ended before the body did (${progress.bytes - taken} bytes taken): ${(err as Error).message}`,
          this.url,
        )
      );
    } finally {
      this.disarmIdle();
    }
  }

  /** Asks for the rest from byte `from` of `total` (same URL, address checked again); refuses anything but that range. */
  private async resume(from: number, total: number | null): Promise<http.IncomingMessage> {
    const target = this.checkUrl(this.url);
    const address = await this.pick(target.hostname);
    const res = await this.request(target, address, { range: `bytes=${from}-` });
    const m = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(res.headers['content-range'] ?? '');
    if (res.statusCode !== 206 || !m || Number(m[1]) !== from || Number(m[3]) !== total || Number(m[2]) !== total - 1) {
      res.destroy();
      throw new FetchError(
        'truncated',
        `connection broke at byte ${from} and the server did not resume (HTTP ${res.statusCode}, ${res.headers['content-range'] ?? 'no Content-Range'})`,
        this.url,
      );
    }
    return res;
  }
}

/** The URL's host, lowercase, without a trailing dot (brackets kept for IPv6). */
function hostOf(u: URL): string {
  return u.hostname.toLowerCase().replace(/\.$/, '');
}

/**
 * Tries each URL in turn (a blob's URL, then its fallbacks) until one gives the right bytes.
 * Throws the last URL's error; a refusal of one URL (blocked, wrong bytes) does not stop the rest.
 */
export async function fetchFromAny(urls: readonly string[], req: Omit<FetchRequest, 'url'>, policy: FetchPolicy): Promise<FetchResult> {
  let last: FetchError | null = null;
  for (const url of urls) {
    if (req.signal?.aborted) break;
    try {
      return await fetchBlob({ ...req, url }, policy);
    } catch (err) {
      if (!(err instanceof FetchError)) throw err;
      last = err;
    }
  }
  if (req.signal?.aborted) throw new FetchError('aborted', 'stopped by the caller', last?.url ?? urls[0] ?? '');
  throw last ?? new FetchError('bad-url', 'no URL to fetch from', '');
}
