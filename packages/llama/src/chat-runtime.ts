import { Environment, Interpreter, Template } from '@huggingface/jinja';

/**
 * Runs a chat template from a model repository: @huggingface/jinja with the globals transformers
 * gives templates (transformers `utils/chat_template_utils.py` `_compile_jinja_template`:
 * `raise_exception`, `strftime_now`), and the limits a template from a stranger's repository
 * needs. transformers renders in jinja2's ImmutableSandboxedEnvironment, whose `range` stops at
 * `MAX_RANGE` (jinja2 `sandbox.py`); @huggingface/jinja has no such bound, nor a bound on loops,
 * so every evaluation step is counted here and long strings are refused.
 */

/** jinja2 `sandbox.py` `MAX_RANGE`. */
const MAX_RANGE = 100_000;

/** How much one render may do. The defaults leave a wide margin: 10,000 messages through SmolLM2's or Llama-3's template take ~300k steps and 0.5 s. */
export interface TemplateLimits {
  /** Evaluation steps (expressions, statements, loop iterations). */
  readonly maxSteps: number;
  /** Wall-clock time: @huggingface/jinja makes a new scope per loop iteration, ~10 µs a step at worst. */
  readonly maxMillis: number;
  /** Characters of any string the template builds (a prompt of ~4M tokens). */
  readonly maxStringChars: number;
}

const DEFAULT_LIMITS: TemplateLimits = { maxSteps: 2_000_000, maxMillis: 10_000, maxStringChars: 16 * 1024 * 1024 };

/** `raise_exception(message)` was called: the template refused its input. */
export class TemplateRaised extends Error {}
/** The template ran past one of the limits above. */
export class TemplateLimit extends Error {}

class BoundedInterpreter extends Interpreter {
  #steps = 0;
  readonly #limits: TemplateLimits;
  readonly #deadline: number;

  constructor(env: Environment, limits: TemplateLimits) {
    super(env);
    this.#limits = limits;
    this.#deadline = performance.now() + limits.maxMillis;
    // A for loop runs its body through evaluateBlock, once per item; an empty body evaluates
    // nothing else, so the steps are counted there too. evaluateBlock is private in the typings.
    const self = this as unknown as { evaluateBlock: (...args: unknown[]) => { value: unknown } };
    const block = self.evaluateBlock.bind(this);
    self.evaluateBlock = (...args) => this.#check(block(...args));
  }

  override evaluate(...args: Parameters<Interpreter['evaluate']>): ReturnType<Interpreter['evaluate']> {
    return this.#check(super.evaluate(...args));
  }

  #check<T extends { value: unknown } | undefined>(result: T): T {
    const { maxSteps, maxMillis, maxStringChars } = this.#limits;
    if (++this.#steps > maxSteps) throw new TemplateLimit(`it took more than ${maxSteps} evaluation steps`);
    if ((this.#steps & 1023) === 0 && performance.now() > this.#deadline) throw new TemplateLimit(`it ran for more than ${maxMillis} ms`);
    const value = result?.value;
    if (typeof value === 'string' && value.length > maxStringChars) {
      throw new TemplateLimit(`it built a string of ${value.length} characters (at most ${maxStringChars})`);
    }
    return result;
  }
}

function range(start: number, stop?: number, step = 1): number[] {
  if (stop === undefined) [start, stop] = [0, start];
  if (![start, stop, step].every(Number.isInteger)) throw new Error('range() takes integers');
  if (step === 0) throw new Error('range() arg 3 must not be zero');
  const length = Math.max(0, Math.ceil((stop - start) / step));
  if (length > MAX_RANGE) throw new TemplateLimit(`range() of ${length} items is too long (at most ${MAX_RANGE})`);
  return Array.from({ length }, (_, i) => start + i * step);
}

const DAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];
const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];
const pad = (n: number) => String(n).padStart(2, '0');

/**
 * Python's `datetime.now().strftime(format)` in the C locale, for `strftime_now` (Llama-3.2's
 * template prints `strftime_now("%d %b %Y")`). @huggingface/jinja's own formats month names with
 * the host's Intl locale (e.g. "Sept" in en-GB), so a prompt would differ from transformers'.
 */
export function strftime(date: Date, format: string): string {
  return String(format).replace(/%([aAbBdHIjmMpSyY%])/g, (_, directive: string) => {
    switch (directive) {
      case 'a':
        return (DAYS[date.getDay()] as string).slice(0, 3);
      case 'A':
        return DAYS[date.getDay()] as string;
      case 'b':
        return (MONTHS[date.getMonth()] as string).slice(0, 3);
      case 'B':
        return MONTHS[date.getMonth()] as string;
      case 'd':
        return pad(date.getDate());
      case 'H':
        return pad(date.getHours());
      case 'I':
        return pad(date.getHours() % 12 || 12);
      case 'j': {
        const start = new Date(date.getFullYear(), 0, 1);
        return String(Math.floor((date.getTime() - start.getTime()) / 86_400_000) + 1).padStart(3, '0');
      }
      case 'm':
        return pad(date.getMonth() + 1);
      case 'M':
        return pad(date.getMinutes());
      case 'p':
        return date.getHours() < 12 ? 'AM' : 'PM';
      case 'S':
        return pad(date.getSeconds());
      case 'y':
        return pad(date.getFullYear() % 100);
      case 'Y':
        return String(date.getFullYear());
      default:
        return '%';
    }
  });
}

const GLOBALS: Record<string, unknown> = {
  true: true,
  false: false,
  none: null,
  True: true,
  False: false,
  None: null,
  range,
  raise_exception: (message: unknown) => {
    throw new TemplateRaised(String(message));
  },
  strftime_now: (format: unknown) => strftime(new Date(), String(format)),
};

/** Parses a template (throws the parser's SyntaxError). */
export function compileTemplate(text: string): Template {
  return new Template(text);
}

/** Renders with the transformers globals; `variables` may shadow them, as template kwargs do. */
export function renderTemplate(
  template: Template,
  variables: Readonly<Record<string, unknown>>,
  limits: TemplateLimits = DEFAULT_LIMITS,
): string {
  const globals = new Environment();
  for (const [name, value] of Object.entries(GLOBALS)) globals.set(name, value);
  const scope = new Environment(globals);
  for (const [name, value] of Object.entries(variables)) if (value !== undefined) scope.set(name, value);
  const result = new BoundedInterpreter(scope, limits).run(template.parsed);
  return String(result.value);
}
