/**
 * The safetensors header as the format's reference implementation reads it (huggingface/safetensors
 * `safetensors/src/tensor.rs`: serde_json into `HashMetadata { __metadata__: Option<HashMap<String,
 * String>>, tensors: HashMap<String, TensorInfo { dtype, shape: Vec<usize>, data_offsets: (usize,
 * usize) }> }`). `JSON.parse` cannot stand in for serde here: it accepts `2.0` where serde wants an
 * integer, keeps the last of two equal keys silently and strips a byte-order mark. So this is a
 * small strict JSON reader for exactly that structure, in one pass over the text, with serde_json's
 * nesting limit; anything it refuses is a message naming the position and what was expected.
 */

/** One tensor as the header describes it; the reader checks the syntax, {@link parseSafetensorsLayout} the values. */
export interface HeaderEntry {
  /** Its key in the header: any JSON string but `__metadata__`. */
  readonly name: string;
  /** The dtype as written; after {@link parseSafetensorsLayout} one of the format's, which {@link decodableDType} may still refuse. */
  readonly dtype: string;
  /** Dimensions, each a non-negative safe integer (`[]` for a scalar). */
  readonly shape: readonly number[];
  /** `data_offsets[0]`: offset of its first byte in the data area (counted from `dataStart`). */
  readonly begin: number;
  /** `data_offsets[1]`: offset just past its last byte; `end − begin` is its element count times the dtype's size. */
  readonly end: number;
}

export interface ParsedHeader {
  readonly metadata: ReadonlyMap<string, string> | null;
  readonly entries: readonly HeaderEntry[];
}

/** serde_json's default recursion limit: deeper values are an error there too. */
const MAX_DEPTH = 128;

export class HeaderSyntaxError extends Error {}

/** Parses the header text; `maxEntries` bounds the tensors (work and memory stay proportional). */
export function readHeader(text: string, maxEntries: number): ParsedHeader {
  return new HeaderReader(text, maxEntries).read();
}

class HeaderReader {
  #at = 0;
  readonly #text: string;
  readonly #maxEntries: number;

  constructor(text: string, maxEntries: number) {
    this.#text = text;
    this.#maxEntries = maxEntries;
  }

  read(): ParsedHeader {
    this.#space();
    this.#expect('{', 'the header to start with "{"');
    const seen = new Set<string>();
    const entries: HeaderEntry[] = [];
    let metadata: Map<string, string> | null = null;
    this.#members(seen, 'header', (name) => {
      if (name === '__metadata__') metadata = this.#metadata();
      else {
        if (entries.length >= this.#maxEntries) this.#fail(`at most ${this.#maxEntries} tensors (this reader's bound)`);
        entries.push(this.#tensor(name));
      }
    });
    this.#space();
    if (this.#at !== this.#text.length) this.#fail('nothing but whitespace after the header object');
    return { metadata, entries };
  }

  /** `{ "key": value, ... }` after its "{": calls `member` with each key positioned at its value; duplicate keys are refused. */
  #members(seen: Set<string>, what: string, member: (key: string) => void): void {
    this.#space();
    if (this.#peek() === '}') {
      this.#at++;
      return;
    }
    for (;;) {
      this.#space();
      const key = this.#string();
      if (seen.has(key)) this.#fail(`${what} has the key ${quote(key)} twice`);
      seen.add(key);
      this.#space();
      this.#expect(':', '":" after a key');
      this.#space();
      member(key);
      this.#space();
      const c = this.#text[this.#at++];
      if (c === '}') return;
      if (c !== ',') this.#fail(`"," or "}" in ${what}`, this.#at - 1);
    }
  }

  #metadata(): Map<string, string> | null {
    if (this.#literal('null')) return null;
    this.#expect('{', '__metadata__ to be an object of strings (or null)');
    const map = new Map<string, string>();
    this.#members(new Set(), '__metadata__', (key) => {
      if (this.#peek() !== '"') this.#fail(`__metadata__[${quote(key)}] to be a string`);
      map.set(key, this.#string());
    });
    return map;
  }

  #tensor(name: string): HeaderEntry {
    this.#expect('{', `tensor ${quote(name)} to be an object { dtype, shape, data_offsets }`);
    let dtype: string | undefined;
    let shape: number[] | undefined;
    let offsets: number[] | undefined;
    this.#members(new Set(), `tensor ${quote(name)}`, (key) => {
      if (key === 'dtype') {
        if (this.#peek() !== '"') this.#fail(`tensor ${quote(name)}: dtype to be a string`);
        dtype = this.#string();
      } else if (key === 'shape') shape = this.#uintArray(`tensor ${quote(name)}: shape`);
      else if (key === 'data_offsets') offsets = this.#uintArray(`tensor ${quote(name)}: data_offsets`);
      else this.#skipValue(1); // serde ignores unknown fields of TensorInfo
    });
    if (dtype === undefined || shape === undefined || offsets === undefined) {
      const missing = [dtype === undefined && 'dtype', shape === undefined && 'shape', offsets === undefined && 'data_offsets'].filter(
        Boolean,
      );
      this.#fail(`tensor ${quote(name)} to have ${missing.join(', ')}`);
    }
    if ((offsets as number[]).length !== 2) this.#fail(`tensor ${quote(name)}: data_offsets to be [begin, end]`);
    const [begin, end] = offsets as [number, number];
    return { name, dtype: dtype as string, shape: shape as number[], begin, end };
  }

  /** `[n, ...]` of JSON integers ≥ 0 written without fraction or exponent (serde's usize). */
  #uintArray(what: string): number[] {
    this.#expect('[', `${what} to be an array of non-negative integers`);
    const out: number[] = [];
    this.#space();
    if (this.#peek() === ']') {
      this.#at++;
      return out;
    }
    for (;;) {
      this.#space();
      const start = this.#at;
      while (this.#at < this.#text.length && isDigit(this.#text.charCodeAt(this.#at))) this.#at++;
      const digits = this.#text.slice(start, this.#at);
      const next = this.#text[this.#at];
      if (digits === '' || (digits.length > 1 && digits[0] === '0') || next === '.' || next === 'e' || next === 'E') {
        this.#fail(`${what} to hold non-negative integers (no sign, fraction or exponent)`, start);
      }
      const value = Number(digits);
      if (!Number.isSafeInteger(value)) this.#fail(`${what}: ${digits.slice(0, 30)} is larger than this reader handles (2^53 - 1)`, start);
      out.push(value);
      this.#space();
      const c = this.#text[this.#at++];
      if (c === ']') return out;
      if (c !== ',') this.#fail(`"," or "]" in ${what}`, this.#at - 1);
    }
  }

  /** Any JSON value (an unknown field), checked for syntax and depth, and dropped. */
  #skipValue(depth: number): void {
    if (depth > MAX_DEPTH) this.#fail(`values nested at most ${MAX_DEPTH} deep`);
    this.#space();
    const c = this.#peek();
    if (c === '"') this.#string();
    else if (c === '{') {
      this.#at++;
      this.#members(new Set(), 'an object', () => this.#skipValue(depth + 1));
    } else if (c === '[') {
      this.#at++;
      this.#space();
      if (this.#peek() === ']') {
        this.#at++;
        return;
      }
      for (;;) {
        this.#skipValue(depth + 1);
        this.#space();
        const d = this.#text[this.#at++];
        if (d === ']') return;
        if (d !== ',') this.#fail('"," or "]" in an array', this.#at - 1);
      }
    } else if (!this.#literal('true') && !this.#literal('false') && !this.#literal('null')) this.#number();
  }

  #number(): void {
    const m = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
    m.lastIndex = this.#at;
    if (!m.test(this.#text)) this.#fail('a JSON value');
    this.#at = m.lastIndex;
  }

  #string(): string {
    this.#expect('"', 'a string');
    let out = '';
    let run = this.#at;
    for (;;) {
      if (this.#at >= this.#text.length) this.#fail('a closing quote');
      const c = this.#text.charCodeAt(this.#at);
      if (c === 0x22) {
        out += this.#text.slice(run, this.#at++);
        return out;
      }
      if (c < 0x20) this.#fail('no raw control characters inside a string (escape them)');
      if (c !== 0x5c) {
        this.#at++;
        continue;
      }
      out += this.#text.slice(run, this.#at);
      const e = this.#text[this.#at + 1];
      this.#at += 2;
      const simple = e === undefined ? undefined : ESCAPES[e];
      if (simple !== undefined) out += simple;
      else if (e === 'u') {
        const unit = this.#hex4();
        if (unit >= 0xd800 && unit <= 0xdbff) {
          // A high surrogate must be followed by an escaped low one (serde_json refuses lone surrogates).
          if (this.#text[this.#at] !== '\\' || this.#text[this.#at + 1] !== 'u') this.#fail('a low surrogate escape after a high one');
          this.#at += 2;
          const low = this.#hex4();
          if (low < 0xdc00 || low > 0xdfff) this.#fail('a low surrogate escape after a high one');
          out += String.fromCharCode(unit, low);
        } else if (unit >= 0xdc00 && unit <= 0xdfff) this.#fail('no lone low surrogate escape');
        else out += String.fromCharCode(unit);
      } else this.#fail('a valid escape sequence', this.#at - 2);
      run = this.#at;
    }
  }

  #hex4(): number {
    const hex = this.#text.slice(this.#at, this.#at + 4);
    if (!/^[0-9a-fA-F]{4}$/.test(hex)) this.#fail('four hex digits after \\u');
    this.#at += 4;
    return Number.parseInt(hex, 16);
  }

  #literal(word: string): boolean {
    if (this.#text.startsWith(word, this.#at)) {
      this.#at += word.length;
      return true;
    }
    return false;
  }

  #space(): void {
    for (;;) {
      const c = this.#text.charCodeAt(this.#at);
      if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) this.#at++;
      else return;
    }
  }

  #peek(): string | undefined {
    return this.#text[this.#at];
  }

  #expect(char: string, what: string): void {
    if (this.#text[this.#at] !== char) this.#fail(what);
    this.#at++;
  }

  #fail(expected: string, at = this.#at): never {
    const found = at >= this.#text.length ? 'the end of the header' : quote(this.#text.slice(at, at + 12));
    throw new HeaderSyntaxError(`expected ${expected} at header character ${at}, found ${found}`);
  }
}

const ESCAPES: Record<string, string> = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };

const isDigit = (c: number): boolean => c >= 0x30 && c <= 0x39;

/** A short, printable rendering of untrusted text for messages. */
function quote(s: string): string {
  return JSON.stringify(s.length > 40 ? `${s.slice(0, 37)}...` : s);
}
