// Validation of the Kubernetes manifests in deploy/ (test-only code: used by deploy.test.ts, not
// published): each object against its published schema, then the links between the objects.
import { readdirSync, readFileSync } from 'node:fs';
import { Ajv, type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import { Deployment } from 'kubernetes-models/apps/v1';
import { PersistentVolumeClaim, Service } from 'kubernetes-models/v1';
import { parseAllDocuments } from 'yaml';

export interface Manifest {
  readonly file: string;
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: { name: string; labels?: Record<string, string> };
  // biome-ignore lint/suspicious/noExplicitAny: a manifest is whatever its YAML says; validation narrows it.
  readonly spec: any;
}

/** Every document of every `.yaml` file in `dir`, in file order. */
export function readManifests(dir: URL): Manifest[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.yaml'))
    .sort()
    .flatMap((file) =>
      parseAllDocuments(readFileSync(new URL(file, dir), 'utf8')).map((doc) => {
        if (doc.errors.length > 0) throw new Error(`${file}: ${doc.errors[0]?.message}`);
        return { file, ...(doc.toJS() as Omit<Manifest, 'file'>) };
      }),
    );
}

/**
 * A CRD's openAPIV3Schema as the API server applies it with `kubectl --validate=strict`: an object
 * schema with `properties` refuses fields it does not list (the CRDs do not say so themselves; the
 * API server prunes or, strictly, refuses them), unless it preserves unknown fields.
 */
function strictSchema(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(strictSchema);
  if (schema === null || typeof schema !== 'object') return schema;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(schema))
    out[k] = k === 'properties' ? Object.fromEntries(Object.entries(v as object).map(([p, s]) => [p, strictSchema(s)])) : strictSchema(v);
  if (out.properties && out.additionalProperties === undefined && out['x-kubernetes-preserve-unknown-fields'] !== true)
    out.additionalProperties = false;
  return out;
}

/** Validators by `apiVersion/kind`, from the CRD files in `dir` (every served version). */
export function crdValidators(dir: URL): Map<string, ValidateFunction> {
  const ajv = new Ajv({ allErrors: true, strict: true, useDefaults: true });
  addFormats(ajv);
  // Kubernetes' structural-schema extensions: markers for the API server, not JSON Schema.
  for (const k of [
    'x-kubernetes-validations',
    'x-kubernetes-list-type',
    'x-kubernetes-list-map-keys',
    'x-kubernetes-map-type',
    'x-kubernetes-preserve-unknown-fields',
    'x-kubernetes-int-or-string',
    'x-kubernetes-embedded-resource',
  ])
    ajv.addKeyword(k);
  const validators = new Map<string, ValidateFunction>();
  for (const crd of readManifests(dir)) {
    const { group, names, versions } = crd.spec as {
      group: string;
      names: { kind: string };
      versions: { name: string; schema: { openAPIV3Schema: object } }[];
    };
    for (const v of versions)
      validators.set(`${group}/${v.name}/${names.kind}`, ajv.compile(strictSchema(v.schema.openAPIV3Schema) as object));
  }
  return validators;
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/**
 * The CEL rules (`x-kubernetes-validations`) of the vendored InferencePool CRD, which JSON Schema
 * cannot say: endpointPickerRef needs a port when it names a Service, target ports are unique.
 */
function inferencePoolRules(m: Manifest): string[] {
  const errors: string[] = [];
  const ref = m.spec?.endpointPickerRef;
  if (ref && (ref.kind ?? 'Service') === 'Service' && ref.port === undefined)
    errors.push("port is required when kind is 'Service' or unspecified");
  const ports = (m.spec?.targetPorts ?? []).map((p: { number: number }) => p.number);
  if (new Set(ports).size !== ports.length) errors.push('port number must be unique');
  return errors;
}

const CORE_KINDS: Record<string, (m: object) => { validate(): void }> = {
  'apps/v1/Deployment': (m) => new Deployment(m as never),
  'v1/PersistentVolumeClaim': (m) => new PersistentVolumeClaim(m as never),
  'v1/Service': (m) => new Service(m as never),
};

/** Schema errors of one manifest: `[]` when it is valid. */
export function schemaErrors(m: Manifest, crds: Map<string, ValidateFunction>): string[] {
  const { file, ...object } = m;
  const where = `${file}: ${m.kind} ${m.metadata?.name}`;
  if (typeof m.metadata?.name !== 'string' || !DNS_LABEL.test(m.metadata.name)) return [`${where}: metadata.name must be a DNS label`];
  const key = `${m.apiVersion}/${m.kind}`;
  const core = CORE_KINDS[key];
  if (core) {
    try {
      core(object).validate();
      return [];
    } catch (err) {
      return [`${where}: ${(err as Error).message}`];
    }
  }
  const validate = crds.get(key);
  if (validate === undefined) return [`${where}: no schema for ${key}`];
  const errors = validate(structuredClone(object))
    ? []
    : (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message} ${JSON.stringify(e.params)}`);
  if (m.kind === 'InferencePool') errors.push(...inferencePoolRules(m));
  return errors.map((e) => `${where}: ${e}`);
}
