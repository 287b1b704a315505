import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseArgs } from './cli/args.js';
import { crdValidators, type Manifest, readManifests, schemaErrors } from './deploy/validate-manifests.js';

const manifests = readManifests(new URL('../deploy/kubernetes/', import.meta.url));
const crds = crdValidators(new URL('../deploy/crds/', import.meta.url));
const byKind = (kind: string) => manifests.filter((m) => m.kind === kind);
const one = (kind: string) => {
  const found = byKind(kind);
  expect(found, kind).toHaveLength(1);
  return found[0] as Manifest;
};
const edited = (m: Manifest, edit: (copy: Manifest) => void): Manifest => {
  const copy = structuredClone(m);
  edit(copy);
  return copy;
};

describe('deploy/kubernetes: the manifests of docs/deploy.md', () => {
  it('every object validates against its published schema (InferencePool v1, llm-d.ai/v1alpha2 CRDs, Kubernetes core)', () => {
    expect(manifests.map((m) => `${m.apiVersion}/${m.kind}`).sort()).toEqual([
      'apps/v1/Deployment',
      'inference.networking.k8s.io/v1/InferencePool',
      'llm-d.ai/v1alpha2/InferenceModelRewrite',
      'llm-d.ai/v1alpha2/InferenceObjective',
      'llm-d.ai/v1alpha2/InferenceObjective',
      'v1/PersistentVolumeClaim',
    ]);
    for (const m of manifests) expect(schemaErrors(m, crds)).toEqual([]);
  });

  it('the validation refuses what the API server would (so the test above can fail)', () => {
    const pool = one('InferencePool');
    const deployment = one('Deployment');
    const rewrite = one('InferenceModelRewrite');
    const bad: [string, Manifest][] = [
      ['an unknown field', edited(pool, (m) => (m.spec.targetPort = [{ number: 8000 }]))],
      ['a duplicate target port', edited(pool, (m) => m.spec.targetPorts.push({ number: 8000 }))],
      ['an endpoint picker Service without a port', edited(pool, (m) => delete m.spec.endpointPickerRef.port)],
      ['a missing selector', edited(pool, (m) => delete m.spec.selector)],
      ['replicas as a word', edited(deployment, (m) => (m.spec.replicas = 'three'))],
      ['a container without a name', edited(deployment, (m) => delete m.spec.template.spec.containers[0].name)],
      ['a container port by name', edited(deployment, (m) => (m.spec.template.spec.containers[0].ports[0].containerPort = 'http'))],
      ['a rewrite weight of 0', edited(rewrite, (m) => (m.spec.rules[0].targets[0].weight = 0))],
      ['a rewrite without targets', edited(rewrite, (m) => (m.spec.rules[0].targets = []))],
      [
        'an unknown API version',
        edited(rewrite, (m) => ((m as { apiVersion: string }).apiVersion = 'inference.networking.x-k8s.io/v1alpha2')),
      ],
    ];
    for (const [what, m] of bad) expect(schemaErrors(m, crds), what).not.toEqual([]);
  });

  it('the objects fit together: the pool selects the pods on their port, rewrites name served adapters, the args parse', () => {
    const deployment = one('Deployment');
    const pod = deployment.spec.template;
    const container = pod.spec.containers[0];
    const pool = one('InferencePool');
    // The pool selects exactly the Deployment's pods, on the port lora-serve listens on.
    for (const [k, v] of Object.entries(pool.spec.selector.matchLabels)) expect(pod.metadata.labels[k], k).toBe(v);
    const cli = parseArgs(container.args);
    expect(cli.host).toBe('0.0.0.0');
    expect(pool.spec.targetPorts).toEqual([{ number: cli.port }]);
    expect(container.ports).toContainEqual(expect.objectContaining({ name: 'http', containerPort: cli.port }));
    for (const probe of ['readinessProbe', 'startupProbe', 'livenessProbe'])
      expect(container[probe].httpGet, probe).toEqual({ path: '/health', port: 'http' });
    // SIGTERM drains for --drain-timeout seconds; Kubernetes must not kill the pod before that.
    expect(pod.spec.terminationGracePeriodSeconds).toBeGreaterThan(cli.drainTimeout);
    // Every rewrite target and objective points at this pool, and every target is a served adapter.
    const served = (cli.adapters ?? []).map((a) => a.name);
    for (const m of [...byKind('InferenceModelRewrite'), ...byKind('InferenceObjective')])
      expect(m.spec.poolRef.name).toBe(pool.metadata.name);
    const targets = byKind('InferenceModelRewrite').flatMap((m) =>
      m.spec.rules.flatMap((r: { targets: { modelRewrite: string }[] }) => r.targets.map((t) => t.modelRewrite)),
    );
    expect(targets.length).toBeGreaterThan(0);
    for (const t of targets) expect(served).toContain(t);
    // Adapters come from the mounted volume.
    const mounts = container.volumeMounts.map((v: { mountPath: string }) => v.mountPath);
    for (const a of cli.adapters ?? [])
      expect(
        mounts.some((p: string) => a.path.startsWith(`${p}/`)),
        a.path,
      ).toBe(true);
  });

  it('the Dockerfile installs the published server and runs its bin as the pods expect', () => {
    const dockerfile = readFileSync(new URL('../Dockerfile', import.meta.url), 'utf8');
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
    expect(dockerfile).toContain('npm install --global');
    expect(dockerfile).toContain(`${pkg.name}@\${LORA_VERSION}`);
    expect(dockerfile).toContain(`ENTRYPOINT ["${Object.keys(pkg.bin)[0]}", "--host", "0.0.0.0"]`);
    expect(dockerfile).toMatch(/^FROM node:20/m);
    expect(dockerfile).toContain('EXPOSE 8000');
  });
});
