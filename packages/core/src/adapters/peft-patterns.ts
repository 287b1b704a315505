import { RE2JS } from 're2js';
import { describeValue, LoRAError } from '../errors.js';

/**
 * PEFT's module-name matching, on a linear-time regular-expression engine. PEFT hands
 * adapter_config.json strings to Python's `re` (`target_modules` as `re.fullmatch`, rank_pattern /
 * alpha_pattern keys inside `(.*\.)?(key)$`, layers_pattern inside `.*?\.{p}\.(\d+)\.`); a
 * backtracking engine (JavaScript's RegExp included) lets a 200-byte config such as `(a|a)*c`
 * hang the process. RE2 (re2js, pure JS) matches in time linear in the name and refuses the
 * features that need backtracking (lookaround, backreferences), which PEFT configs do not use.
 */

/** Longest pattern accepted: real ones are names or short alternations; compiling is linear in length. */
const MAX_PATTERN_LENGTH = 4096;

export interface NameMatcher {
  test(name: string): boolean;
}

const compile = (expression: string, field: string, source: string): RE2JS => {
  if (source.length > MAX_PATTERN_LENGTH) {
    throw new LoRAError(
      'E_FORMAT',
      `adapter_config.json: ${field} is ${source.length} characters; patterns may be at most ${MAX_PATTERN_LENGTH}`,
    );
  }
  try {
    return RE2JS.compile(expression);
  } catch (err) {
    throw new LoRAError(
      'E_UNSUPPORTED',
      `adapter_config.json: ${field} ${describeValue(source)} is not a regular expression this loader can run in linear time (${describeValue((err as Error)?.message)}); lookarounds and backreferences are not supported`,
    );
  }
};

/** `re.fullmatch(pattern, name)`: target_modules / exclude_modules given as one string. */
export function fullMatcher(pattern: string, field: string): NameMatcher {
  const re = compile(pattern, field, pattern);
  return { test: (name) => re.matches(name) };
}

/** A key made of word characters, '-' and '.' only: its regex has a fixed length and '.' is the only wildcard. */
const SIMPLE_KEY = /^[\w.-]+$/;

/**
 * `re.match(rf"(.*\.)?({key})$", name)` (PEFT `utils/other.py` `get_pattern_key`): the key matches
 * a dotted suffix of the name. Keys that are plain module names (the usual case, one per module in
 * a converted adapter) are compared character by character without a regex — the same answer,
 * without 3 µs per (module, key) pair of a regex engine.
 */
export function suffixMatcher(key: string, field: string): NameMatcher {
  if (SIMPLE_KEY.test(key)) {
    return {
      test(name) {
        const start = name.length - key.length;
        if (start < 0 || (start > 0 && name[start - 1] !== '.')) return false;
        for (let i = 0; i < key.length; i++) {
          const k = key[i];
          // In the regex '.' matches any character but a newline; other key characters match themselves.
          if (k === '.' ? name[start + i] === '\n' : name[start + i] !== k) return false;
        }
        return true;
      },
    };
  }
  const re = compile(`(?:.*\\.)?(?:${key})`, `${field} key`, key);
  return { test: (name) => re.matches(name) };
}

/** The layer index PEFT reads for layers_to_transform (`tuners_utils.py` `check_target_module_exists`). */
export function layerIndex(name: string, layersPattern: readonly RE2JS[] | null): number | undefined {
  const patterns = layersPattern ?? [DEFAULT_LAYER_INDEX];
  for (const re of patterns) {
    const m = re.matcher(name);
    if (m.lookingAt()) return Number(m.group(1));
  }
  return undefined;
}

const DEFAULT_LAYER_INDEX = RE2JS.compile('.*?\\.[^.]*\\.(\\d+)\\.');

/** `rf".*?\.{pattern}\.(\d+)\."` for each layers_pattern entry, spliced in unwrapped exactly as PEFT does. */
export function compileLayersPattern(patterns: readonly string[], field: string): RE2JS[] {
  return patterns.map((p) => compile(`.*?\\.${p}\\.(\\d+)\\.`, field, p));
}
