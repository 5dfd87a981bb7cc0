import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Histogram } from 'prom-client';
import { afterAll, describe, expect, it } from 'vitest';
import { parseAllDocuments, parse as parseYaml, stringify } from 'yaml';
import { createMetrics } from '../../src/controller/metrics.ts';
import { binaries } from '../testbed/paths.ts';
import { freshNamespace, kubectl, runTool } from './support.ts';

/**
 * The chart's monitoring objects: chart-testing's ci/ values files lint clean; the ServiceMonitor,
 * PrometheusRule and Grafana dashboard are off by default; the PrometheusRule passes the Prometheus
 * Operator's own schema (kubeconform, and the test bed's API server); and every metric and label the
 * alerts and the dashboard query is one the controller exports (src/controller/metrics.ts), so a
 * renamed metric or label breaks this test rather than an alert in production.
 */
const root = new URL('../../', import.meta.url).pathname;
const CHART = join(root, 'charts/secretsync');
const CI = join(CHART, 'ci');
const PROMETHEUS_RULE_CRD = join(root, 'e2e/tests/prometheusrule-crd.yaml');

const work = mkdtempSync(join(tmpdir(), 'secretsync-chart-monitoring-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const run = (file: string, args: string[], input = '') => runTool(file, args, join(work, 'helm'), input);

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  spec?: Record<string, unknown>;
  data?: Record<string, string>;
}

async function template(args: string[], namespace = 'mon'): Promise<K8sObject[]> {
  const r = await run(binaries.helm(), ['template', 'rel', CHART, '--namespace', namespace, ...args]);
  expect(r.stderr, 'helm template stderr').toBe('');
  expect(r.code).toBe(0);
  return parseAllDocuments(r.stdout)
    .map((d) => d.toJS() as K8sObject | null)
    .filter((o): o is K8sObject => o !== null);
}

const MONITORING = ['--values', join(CI, 'monitoring-values.yaml')];
const ofKind = (objects: K8sObject[], kind: string) => objects.filter((o) => o.kind === kind);
const one = (objects: K8sObject[], kind: string) => {
  const found = ofKind(objects, kind);
  expect(found, kind).toHaveLength(1);
  return found[0]!;
};

// --- What the controller exports, and what a query references -------------------------------------

/** Labels Prometheus adds to every series scraped through a ServiceMonitor. */
const TARGET_LABELS = ['job', 'instance', 'namespace', 'pod', 'service', 'endpoint', 'container'];

/** Every series name the controller exports, with its labels (a histogram's _bucket, _sum, _count). */
function exportedSeries(): Map<string, Set<string>> {
  const series = new Map<string, Set<string>>([['up', new Set(TARGET_LABELS)]]);
  for (const metric of createMetrics().registry.getMetricsAsArray()) {
    const own = (metric as unknown as { labelNames?: readonly string[] }).labelNames ?? [];
    const labels = new Set([...own, ...TARGET_LABELS]);
    if (metric instanceof Histogram) {
      series.set(`${metric.name}_bucket`, new Set([...labels, 'le']));
      series.set(`${metric.name}_sum`, labels);
      series.set(`${metric.name}_count`, labels);
    } else series.set(metric.name, labels);
  }
  return series;
}

interface Query {
  selectors: { metric: string; labels: string[] }[];
  /** Labels of by/without/on/ignoring clauses. */
  grouping: string[];
}

const FUNCTIONS = new Set([
  'sum',
  'max',
  'min',
  'count',
  'avg',
  'rate',
  'increase',
  'histogram_quantile',
  'absent',
  'vector',
]);
const GROUPING = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right']);
const SET_OPERATORS = new Set(['and', 'or', 'unless', 'bool']);

/**
 * The selectors and grouping labels of a PromQL expression (or a Grafana label_values() query).
 * Not a full parser (no promtool here): it refuses unbalanced brackets, unknown functions, bad
 * matchers and ranges, which is what a hand-written query gets wrong besides names.
 */
function parseQuery(text: string): Query {
  const labelValues = /^label_values\(\s*([a-zA-Z_:][\w:]*)\s*,\s*(\w+)\s*\)$/.exec(text.trim());
  if (labelValues)
    return { selectors: [{ metric: labelValues[1]!, labels: [labelValues[2]!] }], grouping: [] };
  const s = text.replaceAll('$__rate_interval', '5m');
  const query: Query = { selectors: [], grouping: [] };
  let depth = 0;
  let i = 0;
  const fail = (why: string): never => {
    throw new Error(`${why} at ${i} in: ${text}`);
  };
  const nextChar = (from: number) => s.slice(from).match(/^\s*(.?)/)?.[1] ?? '';
  while (i < s.length) {
    const c = s[i]!;
    if (/\s/.test(c) || '*/+-<>=!,'.includes(c)) i++;
    else if (c === '(') {
      depth++;
      i++;
    } else if (c === ')') {
      if (--depth < 0) fail('unbalanced )');
      i++;
    } else if (c === '[') {
      const end = s.indexOf(']', i);
      if (end < 0 || !/^\d+(ms|s|m|h|d|w|y)$/.test(s.slice(i + 1, end))) fail('bad range');
      i = end + 1;
    } else if (/[0-9.]/.test(c)) i += /^[0-9.]+/.exec(s.slice(i))![0].length;
    else {
      const word = /^[a-zA-Z_:][\w:]*/.exec(s.slice(i))?.[0] ?? fail(`unexpected ${c}`);
      i += word.length;
      const after = s.indexOf(nextChar(i), i);
      if (GROUPING.has(word)) {
        if (nextChar(i) !== '(') continue;
        const end = s.indexOf(')', after);
        for (const label of s.slice(after + 1, end).split(',')) {
          const name = label.trim();
          if (name && !/^[a-zA-Z_]\w*$/.test(name)) fail(`bad label ${name}`);
          if (name) query.grouping.push(name);
        }
        i = end + 1;
      } else if (SET_OPERATORS.has(word)) continue;
      else if (nextChar(i) === '(' || /^\s*(by|without)\s*\(/.test(s.slice(i))) {
        // A function call, or an aggregation with its grouping first: `max by (x) (…)`.
        if (!FUNCTIONS.has(word)) fail(`unknown function ${word}`);
      } else {
        const selector = { metric: word, labels: [] as string[] };
        if (nextChar(i) === '{') {
          const end = s.indexOf('}', after);
          if (end < 0) fail('unclosed {');
          const matcher = /\s*([a-zA-Z_]\w*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*(,|$)/y;
          const body = s.slice(after + 1, end);
          for (matcher.lastIndex = 0; matcher.lastIndex < body.length; ) {
            const m = matcher.exec(body) ?? fail(`bad matcher in {${body}}`);
            selector.labels.push(m[1]!);
          }
          i = end + 1;
        }
        query.selectors.push(selector);
      }
    }
  }
  if (depth !== 0) fail('unbalanced (');
  return query;
}

/** What a query references that the controller does not export; empty when all is real. */
function unexported(text: string, series: Map<string, Set<string>>): string[] {
  const q = parseQuery(text);
  const problems: string[] = [];
  if (q.selectors.length === 0) problems.push('no metric at all');
  const seen = new Set<string>();
  for (const { metric, labels } of q.selectors) {
    const known = series.get(metric);
    if (!known) {
      problems.push(`${metric} is not a metric the controller exports`);
      continue;
    }
    for (const l of known) seen.add(l);
    for (const l of labels) if (!known.has(l)) problems.push(`${metric} has no label ${l}`);
  }
  for (const l of q.grouping) if (!seen.has(l)) problems.push(`no metric of the query has the label ${l}`);
  return problems;
}

/** GitHub's anchors of a markdown page's headings. */
function anchors(markdown: string): Set<string> {
  return new Set(
    [...markdown.matchAll(/^#{1,6}\s+(.+)$/gm)].map((m) =>
      m[1]!
        .trim()
        .toLowerCase()
        .replace(/[^\w\- ]/g, '')
        .replace(/ /g, '-'),
    ),
  );
}

// --- The tests ----------------------------------------------------------------------------------

describe('the query check itself', () => {
  const series = exportedSeries();

  it('knows the controller metrics, histograms included', () => {
    expect(series.get('secretsync_aws_calls_total')).toContain('operation');
    expect(series.get('secretsync_reconcile_duration_seconds_bucket')).toContain('le');
    expect(series.get('secretsync_not_ready')).toContain('reason');
  });

  it('accepts a real query and names what is wrong in others', () => {
    expect(
      unexported(
        'sum by (service, operation) (rate(secretsync_aws_calls_total{job=~"$job", outcome!="ok"}[$__rate_interval]))',
        series,
      ),
    ).toEqual([]);
    expect(unexported('sum(rate(secretsync_reconciles_total[5m]))', series)).toEqual([
      'secretsync_reconciles_total is not a metric the controller exports',
    ]);
    expect(unexported('max by (namespace) (secretsync_leader{trigger="x"})', series)).toEqual([
      'secretsync_leader has no label trigger',
    ]);
    expect(unexported('sum by (why) (rate(secretsync_reconcile_total[5m]))', series)).toEqual([
      'no metric of the query has the label why',
    ]);
    expect(() => parseQuery('sum(rate(secretsync_reconcile_total[5m])')).toThrow(/unbalanced/);
    expect(() => parseQuery('summ(secretsync_leader)')).toThrow(/unknown function summ/);
    expect(() => parseQuery('secretsync_leader{job=x}')).toThrow(/bad matcher/);
    expect(() => parseQuery('rate(secretsync_reconcile_total[5 m])')).toThrow(/bad range/);
  });
});

describe("the chart's monitoring: ServiceMonitor, PrometheusRule, Grafana dashboard", () => {
  const ciFiles = readdirSync(CI).filter((f) => f.endsWith('-values.yaml'));

  it('has chart-testing values files, the monitoring one among them', () => {
    expect(ciFiles).toEqual(expect.arrayContaining(['default-values.yaml', 'monitoring-values.yaml']));
  });

  it.each(ciFiles)('helm lint --strict is clean with ci/%s', async (file) => {
    const r = await run(binaries.helm(), ['lint', '--strict', CHART, '--values', join(CI, file)]);
    expect(r.stdout + r.stderr).toContain('1 chart(s) linted, 0 chart(s) failed');
    expect(r.stdout).not.toMatch(/\[(WARNING|ERROR)\]/);
    expect(r.code).toBe(0);
  });

  it('renders none of them by default, nor without metrics', async () => {
    const kinds = (objects: K8sObject[]) => objects.map((o) => o.kind);
    const defaults = await template(['--values', join(CI, 'default-values.yaml')]);
    expect(kinds(defaults)).not.toContain('ServiceMonitor');
    expect(kinds(defaults)).not.toContain('PrometheusRule');
    expect(kinds(defaults)).not.toContain('ConfigMap');
    const noMetrics = await template([...MONITORING, '--set', 'metrics.enabled=false']);
    expect(
      kinds(noMetrics).filter((k) => ['ServiceMonitor', 'PrometheusRule', 'ConfigMap'].includes(k)),
    ).toEqual([]);
  });

  it('renders all three with ci/monitoring-values.yaml; the ServiceMonitor keeps exported labels', async () => {
    const objects = await template(MONITORING);
    const sm = one(objects, 'ServiceMonitor');
    expect((sm.spec!.endpoints as { honorLabels?: boolean }[])[0]!.honorLabels).toBe(true);
    const rule = one(objects, 'PrometheusRule');
    expect(rule.metadata).toMatchObject({
      name: 'rel-secretsync',
      namespace: 'mon',
      labels: { release: 'prometheus' },
    });
    const cm = one(objects, 'ConfigMap');
    expect(cm.metadata).toMatchObject({
      name: 'rel-secretsync-dashboard',
      namespace: 'mon',
      labels: { grafana_dashboard: '1' },
      annotations: { grafana_folder: 'secretsync' },
    });
  });

  describe('the PrometheusRule', () => {
    /** The CRD's schema as kubeconform wants it: strict, as openapi2jsonschema makes it. */
    function writeKubeconformSchema(): string {
      const crd = parseYaml(readFileSync(PROMETHEUS_RULE_CRD, 'utf8')) as {
        spec: { versions: { name: string; schema: { openAPIV3Schema: unknown } }[] };
      };
      const strict = (o: unknown): unknown => {
        if (Array.isArray(o)) return o.map(strict);
        if (o === null || typeof o !== 'object') return o;
        const out = Object.fromEntries(Object.entries(o).map(([k, v]) => [k, strict(v)]));
        if ('properties' in out && !('additionalProperties' in out)) out.additionalProperties = false;
        return out;
      };
      const v1 = crd.spec.versions.find((v) => v.name === 'v1')!;
      writeFileSync(join(work, 'prometheusrule_v1.json'), JSON.stringify(strict(v1.schema.openAPIV3Schema)));
      return join(work, '{{ .ResourceKind }}_{{ .ResourceAPIVersion }}.json');
    }

    async function kubeconform(doc: K8sObject) {
      const r = await run(
        binaries.kubeconform(),
        ['-strict', '-summary', '-output', 'json', '-schema-location', writeKubeconformSchema(), '-'],
        stringify(doc),
      );
      return JSON.parse(r.stdout) as {
        resources: { msg: string }[];
        summary: { valid: number; invalid: number; errors: number; skipped: number };
      };
    }

    it("passes kubeconform against the Prometheus Operator's schema, which refuses a misspelt field", async () => {
      const rule = one(await template(MONITORING), 'PrometheusRule');
      expect((await kubeconform(rule)).summary).toEqual({ valid: 1, invalid: 0, errors: 0, skipped: 0 });

      const misspelt = structuredClone(rule);
      const first = (misspelt.spec!.groups as { rules: Record<string, unknown>[] }[])[0]!.rules[0]!;
      first.fore = first.for;
      delete first.for;
      const refused = await kubeconform(misspelt);
      expect(refused.summary.invalid).toBe(1);
      expect(refused.resources[0]!.msg).toContain("additional properties 'fore' not allowed");
    });

    it('and the API server accepts it (with the dashboard ConfigMap) in a server-side dry run', async () => {
      const crd = await kubectl(['apply', '--server-side', '-f', PROMETHEUS_RULE_CRD]);
      expect(crd.stderr).toBe('');
      await kubectl([
        'wait',
        '--for=condition=Established',
        '--timeout=60s',
        'crd/prometheusrules.monitoring.coreos.com',
      ]);
      const ns = await freshNamespace('chart-mon');
      const objects = await template(MONITORING, ns);
      const file = join(work, 'monitoring.yaml');
      writeFileSync(
        file,
        [one(objects, 'PrometheusRule'), one(objects, 'ConfigMap')].map((o) => stringify(o)).join('---\n'),
      );
      const r = await kubectl(['apply', '--dry-run=server', '--validate=strict', '-o', 'name', '-f', file]);
      expect(r.stderr).toBe('');
      expect(r.stdout.trim().split('\n').sort()).toEqual([
        'configmap/rel-secretsync-dashboard',
        'prometheusrule.monitoring.coreos.com/rel-secretsync',
      ]);
    });

    it('has the four alerts, each on metrics and labels the controller exports, with a runbook in docs/troubleshooting.md', async () => {
      const rule = one(await template(MONITORING), 'PrometheusRule');
      const groups = rule.spec!.groups as {
        name: string;
        rules: {
          alert: string;
          expr: string;
          for: string;
          labels: Record<string, string>;
          annotations: Record<string, string>;
        }[];
      }[];
      const rules = groups.flatMap((g) => g.rules);
      expect(rules.map((r) => r.alert)).toEqual([
        'SecretSyncNotReady',
        'SecretSyncSyncFailures',
        'SecretSyncControllerAbsent',
        'SecretSyncNoLeader',
      ]);
      expect(rules.find((r) => r.alert === 'SecretSyncNotReady')!.for).toBe('15m');

      const series = exportedSeries();
      const page = readFileSync(join(root, 'docs/troubleshooting.md'), 'utf8');
      const headings = anchors(page);
      const runbookUrl = (
        parseYaml(readFileSync(join(CHART, 'values.yaml'), 'utf8')) as {
          metrics: { prometheusRule: { runbookUrl: string } };
        }
      ).metrics.prometheusRule.runbookUrl;
      expect(runbookUrl).toMatch(/\/docs\/troubleshooting\.md$/);
      for (const r of rules) {
        expect(unexported(r.expr, series), `${r.alert}: ${r.expr}`).toEqual([]);
        // Only this release's controller: its metrics Service is the scrape job.
        expect(r.expr, r.alert).toContain('job="rel-secretsync-metrics"');
        expect(r.labels).toMatchObject({ team: 'platform' });
        expect(['warning', 'critical']).toContain(r.labels.severity);
        expect(Object.keys(r.annotations).sort(), r.alert).toEqual(['description', 'runbook_url', 'summary']);
        const [url, anchor] = r.annotations.runbook_url!.split('#');
        expect(url).toBe(runbookUrl);
        expect(headings, `docs/troubleshooting.md has a heading for #${anchor}`).toContain(anchor);
        // $labels.x in the annotations are labels the alert has.
        const q = parseQuery(r.expr);
        const kept = new Set([...q.grouping, ...q.selectors.flatMap((s) => s.labels)]);
        for (const text of Object.values(r.annotations))
          for (const m of text.matchAll(/\$labels\.(\w+)/g))
            expect(kept, `${r.alert} $labels.${m[1]}`).toContain(m[1]);
      }
    });
  });

  describe('the Grafana dashboard', () => {
    const file = JSON.parse(readFileSync(join(CHART, 'files/dashboard.json'), 'utf8')) as {
      uid: string;
      panels: { id: number; type: string; datasource?: { uid: string } }[];
      templating: { list: { name: string; query: string | { query: string } }[] };
    };

    // biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana's variable syntax, not a JS template
    const DATASOURCE = '${datasource}';

    /** Every PromQL expression in the dashboard: panel targets and variable queries. */
    function queries(o: unknown, found: string[] = []): string[] {
      if (Array.isArray(o)) for (const x of o) queries(x, found);
      else if (o && typeof o === 'object')
        for (const [k, v] of Object.entries(o)) {
          if (k === 'expr' && typeof v === 'string') found.push(v);
          else queries(v, found);
        }
      return found;
    }

    it('ships in the ConfigMap as files/dashboard.json has it, labelled for the sidecar as configured', async () => {
      const cm = one(
        await template([
          ...MONITORING,
          '--set',
          'metrics.grafanaDashboard.namespace=grafana',
          '--set',
          'metrics.grafanaDashboard.label=example.com/dashboard',
          '--set',
          'metrics.grafanaDashboard.labelValue=secretsync',
        ]),
        'ConfigMap',
      );
      expect(cm.metadata.namespace).toBe('grafana');
      expect(cm.metadata.labels).toMatchObject({ 'example.com/dashboard': 'secretsync' });
      expect(cm.metadata.labels).not.toHaveProperty('grafana_dashboard');
      expect(JSON.parse(cm.data!['secretsync.json']!)).toEqual(file);
    });

    it('queries only metrics and labels the controller exports, and shows every one of them', () => {
      const series = exportedSeries();
      const variableQueries = file.templating.list
        .filter((v) => v.name !== 'datasource')
        .map((v) => (typeof v.query === 'string' ? v.query : v.query.query));
      const all = [...queries(file.panels), ...variableQueries];
      expect(all.length).toBeGreaterThan(15);
      for (const q of all) expect(unexported(q, series), q).toEqual([]);

      const shown = new Set(all.flatMap((q) => parseQuery(q).selectors.map((s) => s.metric)));
      for (const metric of createMetrics().registry.getMetricsAsArray()) {
        const names =
          metric instanceof Histogram ? [`${metric.name}_bucket`, `${metric.name}_sum`] : [metric.name];
        expect(
          names.some((n) => shown.has(n)),
          `a panel shows ${metric.name}`,
        ).toBe(true);
      }
    });

    it('has unique panel ids and uses its data-source variable everywhere', () => {
      const ids = file.panels.map((p) => p.id);
      expect(new Set(ids).size).toBe(ids.length);
      for (const p of file.panels.filter((x) => x.type !== 'row')) expect(p.datasource?.uid).toBe(DATASOURCE);
      expect(file.uid).toBe('secretsync');
    });
  });
});
