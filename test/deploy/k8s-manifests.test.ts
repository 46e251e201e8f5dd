// Structural checks of docker/k8s/*.yaml. No cluster and no Kubernetes schema package are
// available here, so this test parses the manifests with the `yaml` package and checks what
// a schema would (apiVersion per kind, required fields) and what no schema does: that the
// pieces point at each other (selectors, ports, probe paths, metric name, volumes, the
// environment variables the server reads).
import t from 'tap'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import YAML from 'yaml'
import { usage } from '../../src/config.ts'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..')
const K8S = path.join(ROOT, 'docker', 'k8s')

/** The queue-depth gauge the server exposes on /metrics; the HPA and the adapter rule use it. */
const QUEUE_METRIC = 'ssl_loss_queue_depth'

type Obj = Record<string, any>
interface Manifest { file: string, index: number, doc: Obj }

function parseAll (file: string): Obj[] {
  const docs = YAML.parseAllDocuments(fs.readFileSync(file, 'utf8'))
  if (!Array.isArray(docs)) return []
  return docs.map((d, i) => {
    const problems = [...d.errors, ...d.warnings].map(e => e.message)
    if (problems.length > 0) throw new Error(`${path.basename(file)} document ${i}: ${problems.join('; ')}`)
    return d.toJS() as Obj
  }).filter(d => d !== null)
}

const files = fs.readdirSync(K8S).filter(f => f.endsWith('.yaml')).sort()
const manifests: Manifest[] = files.flatMap(f => parseAll(path.join(K8S, f)).map((doc, index) => ({ file: f, index, doc })))
const where = (m: Manifest): string => `${m.file}#${m.index} (${m.doc.kind} ${m.doc.metadata?.name ?? ''})`
const ofKind = (kind: string): Manifest[] => manifests.filter(m => m.doc.kind === kind)
const workloads = (): Manifest[] => manifests.filter(m => m.doc.kind === 'Deployment' || m.doc.kind === 'StatefulSet')

/** apiVersion of each kind we ship: the GA groups (autoscaling/v2 since 1.23, policy/v1 since 1.21). */
const API_VERSIONS: Record<string, string> = {
  Deployment: 'apps/v1',
  StatefulSet: 'apps/v1',
  Service: 'v1',
  ConfigMap: 'v1',
  HorizontalPodAutoscaler: 'autoscaling/v2',
  PodDisruptionBudget: 'policy/v1',
  Kustomization: 'kustomize.config.k8s.io/v1beta1'
}

/** Whether every key/value of `selector` is among `labels`. */
const selects = (selector: Obj | undefined, labels: Obj | undefined): boolean =>
  selector !== undefined && Object.keys(selector).length > 0 &&
  Object.entries(selector).every(([k, v]) => labels?.[k] === v)

const podLabels = (w: Manifest): Obj => w.doc.spec.template.metadata.labels

/**
 * Environment variables the server reads: the ones src/config.ts's usage() names, the two
 * the next issue adds (DATA_DIR, API_KEYS), TensorFlow's allocator switch, and POD_NAME,
 * which only documents the pod for routing (docker/k8s/README.md).
 */
const KNOWN_ENV = new Set([...usage().matchAll(/<([A-Z_]+)>/g)].map(m => m[1])
  .concat(['DATA_DIR', 'API_KEYS', 'TF_FORCE_GPU_ALLOW_GROWTH', 'POD_NAME']))

t.test('every manifest parses and has the apiVersion, kind and name its kind needs', async t => {
  t.ok(files.length >= 6, `docker/k8s has the manifests (${files.join(', ')})`)
  for (const m of manifests) {
    const want = API_VERSIONS[m.doc.kind]
    t.ok(want, `${where(m)}: kind ${m.doc.kind} is one this test knows`)
    t.equal(m.doc.apiVersion, want, `${where(m)}: apiVersion`)
    if (m.doc.kind !== 'Kustomization') t.match(m.doc.metadata?.name, /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, `${where(m)}: metadata.name is a DNS label`)
  }
  for (const kind of ['Deployment', 'StatefulSet', 'Service', 'HorizontalPodAutoscaler', 'PodDisruptionBudget', 'ConfigMap']) {
    t.ok(ofKind(kind).length > 0, `a ${kind} is shipped`)
  }
})

t.test('workloads: selectors, probes, resources, security, volumes, environment', async t => {
  for (const w of workloads()) {
    const spec = w.doc.spec
    t.ok(selects(spec.selector.matchLabels, podLabels(w)), `${where(w)}: selector.matchLabels match the pod template's labels`)
    const pod = spec.template.spec
    t.equal(pod.securityContext.runAsNonRoot, true, `${where(w)}: runAsNonRoot`)
    t.ok(pod.securityContext.runAsUser > 0, `${where(w)}: runAsUser is not root`)
    t.equal(pod.securityContext.fsGroup, pod.securityContext.runAsUser, `${where(w)}: fsGroup lets the server write its volume`)
    t.equal(pod.containers.length, 1, `${where(w)}: one container`)
    const c = pod.containers[0]
    const portNames = new Set((c.ports as Obj[]).map(p => p.name))
    const portNumbers = new Set((c.ports as Obj[]).map(p => p.containerPort))
    const env = Object.fromEntries((c.env as Obj[]).map(e => [e.name, e]))
    t.equal(env.PORT?.value, String((c.ports as Obj[])[0].containerPort), `${where(w)}: PORT is the container port`)
    t.equal(env.HOST?.value, '0.0.0.0', `${where(w)}: HOST listens on all interfaces (loopback is unreachable from the kubelet)`)
    t.equal(env.BACKEND?.value, 'tensorflow-gpu', `${where(w)}: BACKEND`)
    t.match(c.image, /:gpu$/, `${where(w)}: the GPU image`)
    for (const name of Object.keys(env)) t.ok(KNOWN_ENV.has(name), `${where(w)}: env ${name} is read by the server (known: ${[...KNOWN_ENV].join(', ')})`)
    for (const e of c.env as Obj[]) t.ok(('value' in e) !== ('valueFrom' in e), `${where(w)}: env ${e.name} has exactly one of value and valueFrom`)
    if (env.POD_NAME) t.equal(env.POD_NAME.valueFrom?.fieldRef?.fieldPath, 'metadata.name', `${where(w)}: POD_NAME is the pod's name`)

    // Probes: readiness is warm workers, liveness the process; both on the container's port.
    const probes: Array<[string, string]> = [['readinessProbe', '/health/ready'], ['livenessProbe', '/health/live']]
    if (c.startupProbe) probes.push(['startupProbe', '/health/live'])
    for (const [probe, p] of probes) {
      t.equal(c[probe]?.httpGet?.path, p, `${where(w)}: ${probe} GET ${p}`)
      const port = c[probe]?.httpGet?.port
      t.ok(portNames.has(port) || portNumbers.has(port), `${where(w)}: ${probe} port ${port} is a container port`)
    }
    t.ok(c.readinessProbe && c.livenessProbe, `${where(w)}: readiness and liveness probes`)

    // Resources: a whole GPU in limits (extended resources cannot be overcommitted: a request,
    // when present, must equal the limit), and CPU/memory requests for scheduling.
    t.equal(c.resources.limits['nvidia.com/gpu'], 1, `${where(w)}: limits nvidia.com/gpu: 1`)
    const gpuRequest = c.resources.requests['nvidia.com/gpu']
    t.ok(gpuRequest === undefined || gpuRequest === c.resources.limits['nvidia.com/gpu'], `${where(w)}: GPU request equals the limit`)
    t.ok(c.resources.requests.cpu && c.resources.requests.memory, `${where(w)}: cpu and memory requests`)
    t.ok(pod.tolerations?.some((x: Obj) => x.key === 'nvidia.com/gpu'), `${where(w)}: tolerates the GPU nodes' taint`)

    t.equal(c.securityContext.allowPrivilegeEscalation, false, `${where(w)}: no privilege escalation`)
    t.same(c.securityContext.capabilities.drop, ['ALL'], `${where(w)}: drops all capabilities`)

    // Volumes: every mount has a volume (pod volumes or the StatefulSet's claim templates),
    // DATA_DIR is a mount, and a read-only root filesystem leaves /tmp writable.
    const volumes = new Set([
      ...((pod.volumes ?? []) as Obj[]).map(v => v.name),
      ...((spec.volumeClaimTemplates ?? []) as Obj[]).map(v => v.metadata.name)
    ])
    const mounts = Object.fromEntries((c.volumeMounts as Obj[]).map(m => [m.mountPath, m.name]))
    for (const [mountPath, name] of Object.entries(mounts)) t.ok(volumes.has(name), `${where(w)}: mount ${mountPath} uses a declared volume (${name})`)
    t.ok(mounts[env.DATA_DIR?.value], `${where(w)}: DATA_DIR ${env.DATA_DIR?.value} is a mounted volume`)
    if (c.securityContext.readOnlyRootFilesystem === true) t.ok(mounts['/tmp'], `${where(w)}: /tmp is writable (tsx's cache) under a read-only root`)
  }
})

t.test('the Deployment: GPU, rolling update, replicas left to the HPA', async t => {
  const [d] = ofKind('Deployment')
  t.equal(d.doc.spec.replicas, undefined, 'no spec.replicas: re-applying must not undo the HPA')
  t.equal(d.doc.spec.strategy.type, 'RollingUpdate')
  t.equal(d.doc.spec.template.spec.volumes.find((v: Obj) => v.name === 'data')?.emptyDir !== undefined, true, 'Deployment pods keep DATA_DIR in an emptyDir (durable instances are the StatefulSet\'s)')
})

t.test('Services and PodDisruptionBudgets each select the pods of exactly one workload', async t => {
  for (const s of ofKind('Service')) {
    const owners = workloads().filter(w => selects(s.doc.spec.selector, podLabels(w)))
    t.equal(owners.length, 1, `${where(s)} selects ${owners.map(where).join(', ') || 'nothing'}`)
    const c = owners[0]?.doc.spec.template.spec.containers[0]
    for (const p of s.doc.spec.ports as Obj[]) {
      const target = p.targetPort ?? p.port
      t.ok((c?.ports as Obj[] | undefined)?.some(cp => cp.name === target || cp.containerPort === target), `${where(s)}: targetPort ${target} is a container port of its pods`)
    }
  }
  for (const b of ofKind('PodDisruptionBudget')) {
    const owners = workloads().filter(w => selects(b.doc.spec.selector.matchLabels, podLabels(w)))
    t.equal(owners.length, 1, `${where(b)} covers ${owners.map(where).join(', ') || 'nothing'}`)
    t.ok(('minAvailable' in b.doc.spec) !== ('maxUnavailable' in b.doc.spec), `${where(b)}: exactly one of minAvailable and maxUnavailable`)
  }
  const covered = workloads().filter(w => ofKind('PodDisruptionBudget').some(b => selects(b.doc.spec.selector.matchLabels, podLabels(w))))
  t.equal(covered.length, workloads().length, 'every workload has a PodDisruptionBudget')
})

t.test('the HPA scales the Deployment on the queue-depth gauge that the adapter rule serves', async t => {
  const hpas = ofKind('HorizontalPodAutoscaler')
  t.equal(hpas.length, 1)
  const h = hpas[0].doc.spec
  const target = manifests.find(m => m.doc.kind === h.scaleTargetRef.kind && m.doc.metadata.name === h.scaleTargetRef.name)
  t.ok(target, `scaleTargetRef ${h.scaleTargetRef.kind}/${h.scaleTargetRef.name} is shipped`)
  t.equal(h.scaleTargetRef.kind, 'Deployment', 'the stateless Deployment (instances cannot move between StatefulSet pods)')
  t.equal(h.scaleTargetRef.apiVersion, target?.doc.apiVersion)
  t.ok(h.minReplicas >= 1 && h.minReplicas <= h.maxReplicas, `replicas ${h.minReplicas}..${h.maxReplicas}`)
  t.equal(h.metrics.length, 1)
  const metric = h.metrics[0]
  t.equal(metric.type, 'Pods')
  t.equal(metric.pods.metric.name, QUEUE_METRIC)
  t.equal(metric.pods.target.type, 'AverageValue')
  t.ok(Number(metric.pods.target.averageValue) > 0, `averageValue ${metric.pods.target.averageValue}`)

  // The prometheus-adapter config (a ConfigMap holding the adapter's own YAML).
  const [cm] = ofKind('ConfigMap')
  const adapter = YAML.parse(cm.doc.data['config.yaml']) as Obj
  const rule = (adapter.rules as Obj[]).find(r => String(r.seriesQuery).includes(QUEUE_METRIC))
  t.ok(rule, `an adapter rule reads ${QUEUE_METRIC}`)
  t.equal(rule?.name.as, metric.pods.metric.name, 'the rule serves the metric under the name the HPA asks for')
  t.match(rule?.name.matches, new RegExp(`^\\^?${QUEUE_METRIC}\\$?$`))
  t.same(rule?.resources.overrides, { namespace: { resource: 'namespace' }, pod: { resource: 'pod' } }, 'series map to namespaces and pods (a Pods metric)')
  for (const slot of ['<<.Series>>', '<<.LabelMatchers>>', '<<.GroupBy>>']) t.ok(String(rule?.metricsQuery).includes(slot), `metricsQuery uses ${slot}`)
  t.match(rule?.seriesQuery, /namespace!="",pod!=""/, 'only series that carry namespace and pod labels')
})

t.test('the StatefulSet: headless Service for per-pod DNS, a volume per pod, no autoscaler', async t => {
  const [s] = ofKind('StatefulSet')
  const spec = s.doc.spec
  const svc = ofKind('Service').find(m => m.doc.metadata.name === spec.serviceName)
  t.ok(svc, `serviceName ${spec.serviceName} is a shipped Service`)
  t.equal(svc?.doc.spec.clusterIP, 'None', 'the governing Service is headless (one DNS record per pod)')
  t.ok(selects(svc?.doc.spec.selector, podLabels(s)), 'it selects the StatefulSet\'s pods')
  t.equal(svc?.file, s.file, 'it ships in the same file as the StatefulSet')
  const claims = spec.volumeClaimTemplates as Obj[]
  t.equal(claims.length, 1)
  t.same(claims[0].spec.accessModes, ['ReadWriteOnce'])
  t.ok(claims[0].spec.resources.requests.storage, 'a storage request')
  const c = spec.template.spec.containers[0]
  const dataDir = (c.env as Obj[]).find(e => e.name === 'DATA_DIR')?.value
  t.equal((c.volumeMounts as Obj[]).find(m => m.mountPath === dataDir)?.name, claims[0].metadata.name, 'DATA_DIR is the per-pod claim')
  t.equal(spec.template.spec.volumes?.some((v: Obj) => v.name === claims[0].metadata.name), false, 'no pod volume shadows the claim')
  t.equal((c.env as Obj[]).find(e => e.name === 'POD_NAME')?.valueFrom?.fieldRef?.fieldPath, 'metadata.name', 'POD_NAME comes from the downward API')
  t.same(spec.persistentVolumeClaimRetentionPolicy, { whenDeleted: 'Retain', whenScaled: 'Retain' }, 'instances outlive scale-down and deletion')
  t.notOk(ofKind('HorizontalPodAutoscaler').some(h => h.doc.spec.scaleTargetRef.kind === 'StatefulSet'), 'no HPA on the StatefulSet')
})

t.test('kustomization.yaml lists the stateless variant, and only existing files', async t => {
  const [k] = ofKind('Kustomization')
  const resources = k.doc.resources as string[]
  for (const r of resources) t.ok(fs.existsSync(path.join(K8S, r)), `${r} exists`)
  const kinds = resources.flatMap(r => manifests.filter(m => m.file === r).map(m => m.doc.kind)).sort()
  t.same(kinds, ['Deployment', 'HorizontalPodAutoscaler', 'PodDisruptionBudget', 'Service'])
})

t.test('docker/k8s/README.md covers every manifest', async t => {
  const readme = fs.readFileSync(path.join(K8S, 'README.md'), 'utf8')
  for (const f of files) t.ok(readme.includes(f), `README mentions ${f}`)
  t.ok(readme.includes(QUEUE_METRIC), 'README names the metric the server must expose')
})
