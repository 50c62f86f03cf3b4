import type { HttpResponseInit } from '@azure/functions';
import { kestrelResponseHeaderName } from './kestrelRequest.js';

/** A handler's plain answer as the local host writes it (see {@link plainResponse}). */
export interface PlainAnswer {
  readonly status: number;
  /** The headers to write, flat (name, value, name, value…), names as Kestrel writes them; the caller may append. */
  readonly fields: string[];
  readonly body: Buffer | string;
}

const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const NULL_BODY_STATUSES = new Set([204, 205, 304]);
const EMPTY_BODY = Buffer.alloc(0);
/** What `Response` sets for a string body without a Content-Type. */
const DEFAULT_STRING_TYPE = 'text/plain;charset=UTF-8';

/** A valid response header name: lower-cased (as `Headers` keeps it) and as Kestrel writes it. */
interface ResponseHeaderName {
  readonly lower: string;
  readonly wire: string;
}

/** Names handlers answer with, judged once each (a handful in practice); bounded, emptied when full. */
const judgedHeaderNames = new Map<string, ResponseHeaderName | null>();

function responseHeaderName(name: string): ResponseHeaderName | null {
  let judged = judgedHeaderNames.get(name);
  if (judged === undefined) {
    const lower = name.toLowerCase();
    judged = HEADER_NAME.test(name) ? { lower, wire: kestrelResponseHeaderName(lower) } : null;
    if (judgedHeaderNames.size >= 256) judgedHeaderNames.clear();
    judgedHeaderNames.set(name, judged);
  }
  return judged;
}

/** A header value of printable ASCII (and tabs) only: nothing to refuse, nothing that latin1 and UTF-8 write apart. */
const PRINTABLE_ASCII = /^[\t\x20-\x7e]*$/;

/** HTTP whitespace that `Headers` trims off both ends of a value. */
const isHttpWhitespace = (code: number): boolean => code === 0x20 || code === 0x09 || code === 0x0a || code === 0x0d;

/**
 * What `new HttpResponse(init)` (a fetch `Response`) makes of a plain init, without building one: it costs a
 * web stream per response, a quarter of the local host's own CPU per request (measured with `npm run bench`).
 * Plain means: no `jsonBody`, no cookies, a status from 200 to 599, headers as a record of strings without
 * `Set-Cookie`, a string, bytes or no body. Same result: header names lower-cased and sorted, values trimmed
 * of HTTP whitespace, repeated names joined with ", ", `text/plain;charset=UTF-8` for a string body without a
 * Content-Type, no body for 204/205/304, Content-Length and Transfer-Encoding left to the host. Anything
 * `Response` would refuse (a bad name or value) is left to it too: undefined means "take the general path".
 * A string body stays a string when every header value is printable ASCII (head and body can then go out as
 * one UTF-8 write, byte for byte what a latin1 head and a UTF-8 body make).
 *
 * A handler answers with the same header names, in the same order, again and again: what follows from the names
 * alone (their casing on the wire, their sorted order, the headers the host frames itself) is worked out once
 * per list of names ({@link HeadPlan}); each answer then only checks and places its values.
 */
export function plainResponse(init: HttpResponseInit): PlainAnswer | undefined {
  const { status = 200, headers, body, cookies } = init;
  const jsonBody: unknown = init.jsonBody;
  if (jsonBody !== undefined || (cookies !== undefined && cookies.length > 0)) return undefined;
  if (!Number.isInteger(status) || status < 200 || status > 599) return undefined;
  if (
    headers !== undefined &&
    (headers === null || typeof headers !== 'object' || Object.getPrototypeOf(headers) !== Object.prototype)
  ) {
    return undefined;
  }
  if (!(body === undefined || body === null || typeof body === 'string' || body instanceof Uint8Array))
    return undefined;
  const noBody = NULL_BODY_STATUSES.has(status) || body === undefined || body === null;
  const record = (headers ?? {}) as Record<string, unknown>;
  const names = Object.keys(record);
  const plan = headPlan(names, !noBody && typeof body === 'string');
  if (plan === 'refused') return undefined;
  const written =
    plan === 'merged' ? mergedFields(names, record, !noBody && typeof body === 'string') : plan.fill(record);
  if (written === undefined) return undefined;
  return {
    status,
    fields: written.fields,
    body: noBody
      ? EMPTY_BODY
      : typeof body === 'string'
        ? written.asciiHead
          ? body
          : Buffer.from(body, 'utf8')
        : Buffer.from(body),
  };
}

interface WrittenFields {
  readonly fields: string[];
  /** Every value is printable ASCII. */
  readonly asciiHead: boolean;
}

/** A value trimmed as `Headers` trims it, or undefined when `Headers` would refuse it (NUL, CR, LF inside). */
function checkedValue(value: string): { trimmed: string; ascii: boolean } | undefined {
  const trimmed =
    value.length > 0 && (isHttpWhitespace(value.charCodeAt(0)) || isHttpWhitespace(value.charCodeAt(value.length - 1)))
      ? value.replace(/^[\t\n\r ]+|[\t\n\r ]+$/g, '')
      : value;
  if (PRINTABLE_ASCII.test(trimmed)) return { trimmed, ascii: true };
  return /[\0\r\n]/.test(trimmed) ? undefined : { trimmed, ascii: false };
}

/**
 * The written fields of one list of header names (in the handler's order), with or without the default
 * Content-Type of a string body: names in place, sorted; each answer fills in its values.
 */
class HeadPlan {
  readonly #names: readonly string[];
  /** Per name, in the handler's order: the index of its value in the fields, or -1 (framed by the host). */
  readonly #slots: readonly number[];
  readonly #template: readonly string[];
  /** Per name: the last value that needed no trimming and was printable ASCII (the same text needs no check). */
  readonly #clean: (string | undefined)[];

  constructor(names: readonly string[], judged: readonly ResponseHeaderName[], withDefaultType: boolean) {
    this.#names = [...names];
    const written = judged
      .map((name, index) => ({ name, index }))
      .filter(({ name }) => name.lower !== 'content-length' && name.lower !== 'transfer-encoding');
    const hasContentType = written.some(({ name }) => name.lower === 'content-type');
    if (withDefaultType && !hasContentType)
      written.push({ name: responseHeaderName('content-type') as ResponseHeaderName, index: -1 });
    written.sort((a, b) => (a.name.lower < b.name.lower ? -1 : a.name.lower > b.name.lower ? 1 : 0));
    const slots = names.map(() => -1);
    const template: string[] = [];
    for (const { name, index } of written) {
      if (index >= 0) slots[index] = template.length + 1;
      template.push(name.wire, index >= 0 ? '' : DEFAULT_STRING_TYPE);
    }
    this.#slots = slots;
    this.#template = template;
    this.#clean = names.map(() => undefined);
  }

  /** The fields of an answer whose headers are `record` (with exactly this plan's names), or undefined (refused). */
  fill(record: Record<string, unknown>): WrittenFields | undefined {
    const fields = this.#template.slice();
    let asciiHead = true;
    for (let i = 0; i < this.#names.length; i++) {
      const value = record[this.#names[i] as string];
      if (typeof value !== 'string') return undefined;
      let placed = value;
      if (value !== this.#clean[i]) {
        const checked = checkedValue(value);
        if (checked === undefined) return undefined;
        if (!checked.ascii) asciiHead = false;
        else if (checked.trimmed === value) this.#clean[i] = value;
        placed = checked.trimmed;
      }
      const slot = this.#slots[i] as number;
      if (slot >= 0) fields[slot] = placed;
    }
    return { fields, asciiHead };
  }
}

/** What the names alone decide, kept with the names they were decided for. */
interface NamesVerdict {
  readonly names: readonly string[];
  readonly withDefaultType: boolean;
  /**
   * A plan; `refused` when a name is invalid or `Set-Cookie` (the general path answers); `merged` when two
   * names differ only in case (their values are joined; rare, done without a plan).
   */
  readonly verdict: HeadPlan | 'refused' | 'merged';
}

/**
 * Verdicts by first name (a string the handler's code holds, so the lookup hashes nothing new), each list
 * searched for the very same names; bounded, emptied when full.
 */
const verdicts = new Map<string, NamesVerdict[]>();
let verdictCount = 0;

function headPlan(names: readonly string[], withDefaultType: boolean): HeadPlan | 'refused' | 'merged' {
  const first = names[0] ?? '';
  const known = verdicts.get(first);
  if (known !== undefined)
    for (const entry of known) if (sameNames(entry, names, withDefaultType)) return entry.verdict;
  const judged: ResponseHeaderName[] = [];
  let verdict: HeadPlan | 'refused' | 'merged' | undefined;
  for (const name of names) {
    const judgedName = responseHeaderName(name);
    if (judgedName === null || judgedName.lower === 'set-cookie') {
      verdict = 'refused';
      break;
    }
    if (judged.some((other) => other.lower === judgedName.lower)) verdict = 'merged';
    judged.push(judgedName);
  }
  verdict ??= new HeadPlan(names, judged, withDefaultType);
  if (verdictCount >= 256) {
    verdicts.clear();
    verdictCount = 0;
  }
  const entry: NamesVerdict = { names: [...names], withDefaultType, verdict };
  const list = verdicts.get(first);
  if (list === undefined) verdicts.set(first, [entry]);
  else list.push(entry);
  verdictCount += 1;
  return verdict;
}

function sameNames(known: NamesVerdict, names: readonly string[], withDefaultType: boolean): boolean {
  if (known.withDefaultType !== withDefaultType || known.names.length !== names.length) return false;
  for (let i = 0; i < names.length; i++) if (known.names[i] !== names[i]) return false;
  return true;
}

/** The general way, for names that differ only in case: joined with ", " under the first name's place. */
function mergedFields(
  names: readonly string[],
  record: Record<string, unknown>,
  withDefaultType: boolean,
): WrittenFields | undefined {
  const merged: { name: ResponseHeaderName; value: string }[] = [];
  let hasContentType = false;
  let asciiHead = true;
  for (const name of names) {
    const value = record[name];
    if (typeof value !== 'string') return undefined;
    const known = responseHeaderName(name);
    if (known === null || known.lower === 'set-cookie') return undefined;
    const checked = checkedValue(value);
    if (checked === undefined) return undefined;
    if (!checked.ascii) asciiHead = false;
    if (known.lower === 'content-length' || known.lower === 'transfer-encoding') continue;
    if (known.lower === 'content-type') hasContentType = true;
    const previous = merged.find((field) => field.name.lower === known.lower);
    if (previous) previous.value = `${previous.value}, ${checked.trimmed}`;
    else merged.push({ name: known, value: checked.trimmed });
  }
  if (withDefaultType && !hasContentType)
    merged.push({ name: responseHeaderName('content-type') as ResponseHeaderName, value: DEFAULT_STRING_TYPE });
  merged.sort((a, b) => (a.name.lower < b.name.lower ? -1 : a.name.lower > b.name.lower ? 1 : 0));
  const fields: string[] = [];
  for (const { name, value } of merged) fields.push(name.wire, value);
  return { fields, asciiHead };
}
