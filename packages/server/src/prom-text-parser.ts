/**
 * A strict reader of Prometheus' text exposition format 0.0.4, for tests: it refuses what the
 * Gateway API Inference Extension's endpoint picker (Go `expfmt.TextParser`) refuses — a family
 * that is not contiguous, a second `# TYPE` for a family, a malformed label set or value — so a
 * test that reads our /metrics with it also checks that the picker can read it.
 */

export interface PromSample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

export interface PromFamily {
  readonly name: string;
  readonly type: string | undefined;
  readonly help: string | undefined;
  readonly samples: PromSample[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*/;
// Histogram and summary series belong to their family's name without these suffixes.
const SUFFIXES = ['_bucket', '_sum', '_count', '_total', '_created'];

function parseValue(text: string, line: string): number {
  if (text === 'NaN') return Number.NaN;
  if (text === '+Inf' || text === 'Inf') return Number.POSITIVE_INFINITY;
  if (text === '-Inf') return Number.NEGATIVE_INFINITY;
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text)) throw new Error(`bad sample value "${text}" in: ${line}`);
  return Number(text);
}

/** Reads `{a="x",b="y\"z"}` from the start of `rest`; returns the labels and what follows. */
function parseLabels(rest: string, line: string): { labels: Record<string, string>; rest: string } {
  const labels: Record<string, string> = {};
  let i = 1;
  for (;;) {
    while (rest[i] === ' ') i++;
    if (rest[i] === '}') return { labels, rest: rest.slice(i + 1) };
    const name = LABEL.exec(rest.slice(i))?.[0];
    if (name === undefined || rest[i + name.length] !== '=' || rest[i + name.length + 1] !== '"')
      throw new Error(`bad label set in: ${line}`);
    if (name in labels) throw new Error(`label ${name} twice in: ${line}`);
    i += name.length + 2;
    let value = '';
    for (;;) {
      const c = rest[i++];
      if (c === undefined) throw new Error(`unterminated label value in: ${line}`);
      if (c === '"') break;
      if (c === '\\') {
        const e = rest[i++];
        if (e === 'n') value += '\n';
        else if (e === '\\' || e === '"') value += e;
        else throw new Error(`bad escape \\${e} in: ${line}`);
      } else value += c;
    }
    labels[name] = value;
    if (rest[i] === ',') i++;
    else if (rest[i] !== '}') throw new Error(`expected , or } after label ${name} in: ${line}`);
  }
}

export function parsePrometheusText(text: string): Map<string, PromFamily> {
  const families = new Map<string, PromFamily>();
  let current: PromFamily | undefined;
  const family = (name: string, line: string): PromFamily => {
    if (current?.name === name) return current;
    if (families.has(name)) throw new Error(`family ${name} is not contiguous (again at: ${line})`);
    current = { name, type: undefined, help: undefined, samples: [] };
    families.set(name, current);
    return current;
  };
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    if (line.startsWith('#')) {
      const m = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) ?(.*)$/.exec(line);
      if (m === null) continue; // a plain comment
      const [, kind, name, rest] = m as unknown as [string, string, string, string];
      const f = family(name, line);
      if (kind === 'TYPE') {
        if (f.type !== undefined) throw new Error(`second TYPE line for ${name}`);
        if (f.samples.length > 0) throw new Error(`TYPE line for ${name} after its samples`);
        if (!['counter', 'gauge', 'histogram', 'summary', 'untyped'].includes(rest)) throw new Error(`bad type in: ${line}`);
        (f as { type: string }).type = rest;
      } else {
        if (f.help !== undefined) throw new Error(`second HELP line for ${name}`);
        (f as { help: string }).help = rest;
      }
      continue;
    }
    const name = NAME.exec(line)?.[0];
    if (name === undefined) throw new Error(`bad sample line: ${line}`);
    let rest = line.slice(name.length);
    let labels: Record<string, string> = {};
    if (rest.startsWith('{')) ({ labels, rest } = parseLabels(rest, line));
    const fields = rest.trim().split(/ +/);
    if (fields.length < 1 || fields.length > 2 || fields[0] === '') throw new Error(`bad sample line: ${line}`);
    const base = current && SUFFIXES.some((s) => name === current?.name + s) ? current.name : name;
    family(base, line).samples.push({ name, labels, value: parseValue(fields[0] as string, line) });
  }
  return families;
}

/** The only sample of a family (throws when there is none or several). */
export function onlySample(families: Map<string, PromFamily>, name: string): PromSample {
  const samples = families.get(name)?.samples ?? [];
  if (samples.length !== 1) throw new Error(`expected one ${name} sample, found ${samples.length}`);
  return samples[0] as PromSample;
}
