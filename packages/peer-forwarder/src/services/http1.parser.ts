/**
 * Incremental HTTP/1.1 message parsing for the forwarder's own upstream
 * client (upstream-pool.service.ts): response heads, body framing
 * (Content-Length, chunked, until close; RFC 9112 section 6) and the
 * chunked decoder. Strict where leniency would let a message be read two ways:
 * obs-fold, bare CR or LF, bad header names, conflicting Content-Length and
 * malformed chunk sizes are protocol errors, never guesses.
 */

/** A message the parser refuses; the connection it came on cannot be trusted afterwards. */
export class Http1ParseError extends Error {
  readonly code = 'UPSTREAM_PROTOCOL';
  constructor(message: string) {
    super(message);
    this.name = 'Http1ParseError';
  }
}

/** Largest response head accepted (status line and headers). */
export const MAX_HEAD_BYTES = 64 * 1024;
/** Largest chunk-size line (size plus extensions) and trailer section accepted. */
const MAX_CHUNK_LINE_BYTES = 4096;
const MAX_TRAILER_BYTES = 16 * 1024;

// Matching control characters is the point of these patterns.
// eslint-disable-next-line no-control-regex
const STATUS_LINE = /^HTTP\/1\.([01]) ([1-9]\d\d)(?: ([^\x00-\x08\x0a-\x1f\x7f]*))?$/;
/** The end of a message head. */
export const CRLF_CRLF = Buffer.from('\r\n\r\n', 'latin1');
const EMPTY = Buffer.alloc(0);

/** How a message body is delimited (RFC 9112 6.3). */
export type BodyFraming =
  { kind: 'none' } | { kind: 'length'; length: number } | { kind: 'chunked' } | { kind: 'close' };

/** A parsed response head. */
export interface ResponseHead {
  statusCode: number;
  statusMessage: string;
  /** HTTP/1.x minor version. */
  minor: 0 | 1;
  /** Flat `[name, value, ...]` in arrival order and spelling. */
  rawHeaders: string[];
  framing: BodyFraming;
  /** The connection may carry another request after this response. */
  keepAlive: boolean;
}

/** What a response parser reports, in order: head, body chunks, completion. */
export interface ResponseEvents {
  onHead(head: ResponseHead): void;
  onBody(chunk: Buffer): void;
  onComplete(): void;
}

/** tchar (RFC 9110 5.6.2) by character code. */
const TCHAR = new Uint8Array(128);
for (const c of "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
  TCHAR[c.charCodeAt(0)] = 1;
// Controls other than HTAB, CR and LF, anywhere in a head (CR and LF are
// checked by position below): one scan per head instead of one per field.
// eslint-disable-next-line no-control-regex
const BAD_CONTROL = /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]/;
const BARE_CR_OR_LF = /\r(?!\n)|(?<!\r)\n/;

/**
 * Splits a head (without its final CRLF CRLF) into its start line and flat
 * header list. Runs for every request and response the forwarder relays, so
 * it scans by index rather than with a regular expression per field.
 */
export function parseHeaderBlock(block: string): { startLine: string; rawHeaders: string[] } {
  // A control character in a field throws here, naming the field; one in the
  // start line is left to the caller's start-line pattern.
  if (BAD_CONTROL.test(block) || BARE_CR_OR_LF.test(block)) checkFieldCharacters(block);
  let eol = block.indexOf('\r\n');
  const startLine = eol === -1 ? block : block.slice(0, eol);
  const rawHeaders: string[] = [];
  while (eol !== -1) {
    const from = eol + 2;
    eol = block.indexOf('\r\n', from);
    const end = eol === -1 ? block.length : eol;
    const first = block.charCodeAt(from);
    if (first === 32 || first === 9) throw new Http1ParseError('obsolete line folding in header section');
    const colon = block.indexOf(':', from);
    if (colon === -1 || colon >= end || colon === from)
      throw new Http1ParseError(
        `malformed header line: ${JSON.stringify(block.slice(from, Math.min(end, from + 80)))}`,
      );
    for (let i = from; i < colon; i++) {
      const c = block.charCodeAt(i);
      if (c > 127 || TCHAR[c] === 0)
        throw new Http1ParseError(
          `invalid header name: ${JSON.stringify(block.slice(from, Math.min(colon, from + 80)))}`,
        );
    }
    let start = colon + 1;
    let stop = end;
    while (start < stop && (block.charCodeAt(start) === 32 || block.charCodeAt(start) === 9)) start++;
    while (stop > start && (block.charCodeAt(stop - 1) === 32 || block.charCodeAt(stop - 1) === 9)) stop--;
    rawHeaders.push(block.slice(from, colon), block.slice(start, stop));
  }
  return { startLine, rawHeaders };
}

// Field values: visible ASCII, obs-text, SP and HTAB.
// eslint-disable-next-line no-control-regex
const BAD_VALUE = /[\x00-\x08\x0a-\x1f\x7f]/;

/** The slow path of parseHeaderBlock: finds the field with a forbidden character, for the message. */
function checkFieldCharacters(block: string): void {
  const lines = block.split('\r\n');
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    const colon = line.indexOf(':');
    const name = colon > 0 ? line.slice(0, colon) : line;
    if (BAD_VALUE.test(name))
      throw new Http1ParseError(`invalid header name: ${JSON.stringify(name.slice(0, 80))}`);
    if (BAD_VALUE.test(line)) throw new Http1ParseError(`invalid character in header ${name}`);
  }
}

/** Comma-separated tokens of every header named `lower`, lower-cased. */
export function headerTokens(rawHeaders: readonly string[], lower: string): string[] {
  const tokens: string[] = [];
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if (rawHeaders[i]!.length !== lower.length || rawHeaders[i]!.toLowerCase() !== lower) continue;
    for (const part of rawHeaders[i + 1]!.split(',')) {
      const token = part.trim().toLowerCase();
      if (token) tokens.push(token);
    }
  }
  return tokens;
}

/**
 * The Content-Length of a header list: null when absent; identical repeated
 * values (`5, 5`) are one value; differing or non-numeric ones are an error.
 */
export function contentLengthOf(rawHeaders: readonly string[]): number | null {
  let length: number | null = null;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    if (name.length !== 14 || name.toLowerCase() !== 'content-length') continue;
    for (const part of rawHeaders[i + 1]!.split(',')) {
      const text = part.trim();
      if (!/^\d{1,15}$/.test(text))
        throw new Http1ParseError(`invalid content-length: ${JSON.stringify(text)}`);
      const value = Number(text);
      if (length !== null && length !== value) throw new Http1ParseError('conflicting content-length values');
      length = value;
    }
  }
  return length;
}

/** Parses a response head block and decides its body framing (RFC 9112 6.3). */
export function parseResponseHead(block: string, requestMethod: string): ResponseHead {
  const { startLine, rawHeaders } = parseHeaderBlock(block);
  const status = STATUS_LINE.exec(startLine);
  if (!status) throw new Http1ParseError(`invalid status line: ${JSON.stringify(startLine.slice(0, 80))}`);
  const minor = status[1] === '1' ? 1 : 0;
  const statusCode = Number(status[2]);
  const connection = headerTokens(rawHeaders, 'connection');
  // `close` always wins; HTTP/1.0 persists only when it says keep-alive (RFC 9112 9.3).
  let keepAlive = !connection.includes('close') && (minor === 1 || connection.includes('keep-alive'));
  let framing: BodyFraming;
  const transferCodings = headerTokens(rawHeaders, 'transfer-encoding');
  if (requestMethod === 'HEAD' || statusCode < 200 || statusCode === 204 || statusCode === 304) {
    framing = { kind: 'none' };
  } else if (transferCodings.length > 0) {
    // Transfer-Encoding overrides Content-Length; a message carrying both is
    // a smuggling attempt or a broken server: use it once, never reuse the
    // connection (RFC 9112 6.3, item 3).
    // Transfer-Encoding in HTTP/1.0 is faulty framing too (RFC 9112 6.1).
    if (contentLengthOf(rawHeaders) !== null || minor === 0) keepAlive = false;
    if (transferCodings[transferCodings.length - 1] === 'chunked') framing = { kind: 'chunked' };
    else {
      framing = { kind: 'close' };
      keepAlive = false;
    }
  } else {
    const length = contentLengthOf(rawHeaders);
    if (length !== null) framing = length === 0 ? { kind: 'none' } : { kind: 'length', length };
    else {
      framing = { kind: 'close' };
      keepAlive = false;
    }
  }
  return { statusCode, statusMessage: status[3] ?? '', minor, rawHeaders, framing, keepAlive };
}

/** A parsed request head (the forwarder's fast path, routes/fast-path.handler.ts). */
export interface RequestHead {
  method: string;
  /** The request target as sent (origin-form expected, not checked here). */
  target: string;
  minor: 0 | 1;
  rawHeaders: string[];
}

// A method token, a target of visible ASCII, HTTP/1.x.
const REQUEST_LINE = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+) ([\x21-\x7e]+) HTTP\/1\.([01])$/;

/** Parses a request head block (without its final CRLF CRLF); strict like the response side. */
export function parseRequestHead(block: string): RequestHead {
  const { startLine, rawHeaders } = parseHeaderBlock(block);
  const line = REQUEST_LINE.exec(startLine);
  if (!line) throw new Http1ParseError(`invalid request line: ${JSON.stringify(startLine.slice(0, 80))}`);
  return { method: line[1]!, target: line[2]!, minor: line[3] === '1' ? 1 : 0, rawHeaders };
}

const enum Chunk {
  Size,
  Data,
  DataEnd,
  Trailers,
  Done,
}

/**
 * Decodes a chunked body incrementally. `write` returns the number of bytes
 * consumed (less than given once the last chunk and trailers are complete).
 */
export class ChunkedDecoder {
  private state = Chunk.Size;
  private line = '';
  private remaining = 0;
  private trailerBytes = 0;

  constructor(private readonly onData: (chunk: Buffer) => void) {}

  get done(): boolean {
    return this.state === Chunk.Done;
  }

  write(buf: Buffer): number {
    let i = 0;
    while (i < buf.length && this.state !== Chunk.Done) {
      if (this.state === Chunk.Data) {
        const take = Math.min(this.remaining, buf.length - i);
        this.onData(buf.subarray(i, i + take));
        i += take;
        this.remaining -= take;
        if (this.remaining === 0) this.state = Chunk.DataEnd;
        continue;
      }
      // Line-oriented states: collect up to LF.
      const lf = buf.indexOf(10, i);
      const end = lf === -1 ? buf.length : lf + 1;
      this.line += buf.toString('latin1', i, end);
      i = end;
      const limit = this.state === Chunk.Trailers ? MAX_TRAILER_BYTES : MAX_CHUNK_LINE_BYTES;
      if (this.line.length > limit) throw new Http1ParseError('chunk size line or trailers too long');
      if (lf === -1) break;
      if (!this.line.endsWith('\r\n') || this.line.indexOf('\r') !== this.line.length - 2)
        throw new Http1ParseError('bare CR or LF in chunked framing');
      const line = this.line.slice(0, -2);
      this.line = '';
      if (this.state === Chunk.DataEnd) {
        if (line !== '') throw new Http1ParseError('chunk data longer than its size');
        this.state = Chunk.Size;
      } else if (this.state === Chunk.Size) {
        const size = /^([0-9a-fA-F]{1,12})[ \t]*(?:;.*)?$/.exec(line);
        if (!size) throw new Http1ParseError(`invalid chunk size line: ${JSON.stringify(line.slice(0, 40))}`);
        this.remaining = parseInt(size[1]!, 16);
        this.state = this.remaining === 0 ? Chunk.Trailers : Chunk.Data;
      } else {
        // Trailer fields are read and dropped: nothing downstream uses them.
        this.trailerBytes += line.length + 2;
        if (this.trailerBytes > MAX_TRAILER_BYTES) throw new Http1ParseError('trailer section too long');
        if (line === '') this.state = Chunk.Done;
      }
    }
    return i;
  }
}

const enum Phase {
  Head,
  Body,
  Done,
}

/** Most informational (1xx) answers accepted before the final one. */
const MAX_INTERIM_RESPONSES = 10;

/**
 * Parses one response at a time off a connection. `reset(method)` before each
 * request (HEAD answers carry no body); `execute` per received chunk; `end`
 * when the connection closed (completes an until-close body, fails anything
 * unfinished). Throws Http1ParseError on malformed input.
 *
 * `onComplete` is called last for a chunk, after bytes that followed the
 * response were counted in `extraBytes`: a caller may `reset` for the next
 * request from inside it, and a connection with extra bytes must not be reused.
 */
export class ResponseParser {
  private phase = Phase.Done;
  private method = 'GET';
  /** Head bytes received so far, while the head is incomplete. */
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** The last (up to) 3 pending bytes: a CRLF CRLF may start there. */
  private tail: Buffer = EMPTY;
  private interim = 0;
  private touched = false;
  private framing: BodyFraming = { kind: 'none' };
  private remaining = 0;
  private chunked: ChunkedDecoder | null = null;
  /** Bytes that arrived after the response was complete (a broken or hostile server). */
  extraBytes = 0;

  constructor(private readonly events: ResponseEvents) {}

  /** Expects a new response, to a request with this method. */
  reset(method: string): void {
    this.phase = Phase.Head;
    this.method = method;
    this.pending = [];
    this.pendingBytes = 0;
    this.tail = EMPTY;
    this.interim = 0;
    this.touched = false;
    this.chunked = null;
    this.extraBytes = 0;
  }

  /** True once the final response is complete. */
  get complete(): boolean {
    return this.phase === Phase.Done;
  }

  /** True while no byte of the response (not even an informational one) has arrived. */
  get untouched(): boolean {
    return !this.touched;
  }

  execute(data: Buffer): void {
    if (data.length === 0) return;
    if (this.phase === Phase.Done) {
      this.extraBytes += data.length;
      return;
    }
    this.touched = true;
    let buf = data;
    while (buf.length > 0 && !this.complete) {
      if (this.phase === Phase.Head) {
        const rest = this.readHead(buf);
        if (rest === null) return;
        buf = rest;
      } else buf = this.readBody(buf);
    }
    if (this.complete) {
      this.extraBytes += buf.length;
      this.events.onComplete();
    }
  }

  /** The connection ended: an until-close body completes; anything else was cut short. */
  end(): void {
    if (this.phase === Phase.Done) return;
    if (this.phase === Phase.Body && this.framing.kind === 'close') {
      this.phase = Phase.Done;
      this.events.onComplete();
      return;
    }
    throw new Http1ParseError(
      this.phase === Phase.Head
        ? 'connection closed before a complete response head'
        : 'response body cut short',
    );
  }

  /** Consumes head bytes; returns the bytes after the head, or null when more are needed. */
  private readHead(buf: Buffer): Buffer | null {
    let all = buf;
    let end: number;
    if (this.pending.length === 0) end = buf.indexOf(CRLF_CRLF);
    else {
      // Search only the new bytes plus the 3 before them (a CRLF CRLF split
      // across chunks); the head is joined once, when it is complete.
      const overlap = this.tail;
      const found = Buffer.concat([
        overlap,
        buf.subarray(0, Math.min(buf.length, MAX_HEAD_BYTES + 4)),
      ]).indexOf(CRLF_CRLF);
      end = found === -1 ? -1 : this.pendingBytes - overlap.length + found;
      if (end !== -1) all = Buffer.concat([...this.pending, buf]);
    }
    if (end === -1) {
      // A head of exactly MAX_HEAD_BYTES may have 3 bytes of its CRLF CRLF here.
      if (this.pendingBytes + buf.length > MAX_HEAD_BYTES + 3)
        throw new Http1ParseError(`response head larger than ${MAX_HEAD_BYTES} bytes`);
      this.pending.push(buf);
      this.pendingBytes += buf.length;
      const joined = buf.length >= 3 ? buf : Buffer.concat([this.tail, buf]);
      this.tail = joined.subarray(Math.max(0, joined.length - 3));
      return null;
    }
    if (end > MAX_HEAD_BYTES) throw new Http1ParseError(`response head larger than ${MAX_HEAD_BYTES} bytes`);
    this.pending = [];
    this.pendingBytes = 0;
    this.tail = EMPTY;
    const head = parseResponseHead(all.toString('latin1', 0, end), this.method);
    const rest = all.subarray(end + 4);
    if (head.statusCode < 200) {
      // 100 Continue, 103 Early Hints: informational, the final answer follows.
      // 101 would switch protocols, which this client never asks for.
      if (head.statusCode === 101) throw new Http1ParseError('unexpected 101 Switching Protocols');
      if (++this.interim > MAX_INTERIM_RESPONSES)
        throw new Http1ParseError(`more than ${MAX_INTERIM_RESPONSES} informational responses`);
      return rest;
    }
    this.framing = head.framing;
    this.events.onHead(head);
    if (head.framing.kind === 'none') this.phase = Phase.Done;
    else {
      this.phase = Phase.Body;
      if (head.framing.kind === 'length') this.remaining = head.framing.length;
      if (head.framing.kind === 'chunked') this.chunked = new ChunkedDecoder((c) => this.events.onBody(c));
    }
    return rest;
  }

  /** Consumes body bytes; returns what is left after the body ended. */
  private readBody(buf: Buffer): Buffer {
    switch (this.framing.kind) {
      case 'length': {
        if (buf.length < this.remaining) {
          this.remaining -= buf.length;
          this.events.onBody(buf);
          return EMPTY;
        }
        const body = buf.subarray(0, this.remaining);
        const rest = buf.subarray(this.remaining);
        this.remaining = 0;
        if (body.length > 0) this.events.onBody(body);
        this.phase = Phase.Done;
        return rest;
      }
      case 'chunked': {
        const used = this.chunked!.write(buf);
        if (!this.chunked!.done) return EMPTY;
        this.chunked = null;
        this.phase = Phase.Done;
        return buf.subarray(used);
      }
      case 'close':
        this.events.onBody(buf);
        return EMPTY;
      default:
        this.phase = Phase.Done;
        return buf;
    }
  }
}
