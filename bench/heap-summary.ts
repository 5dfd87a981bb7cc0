// Summarises a V8 heap snapshot (bench/memory.ts MEM_SNAPSHOT=1, or v8.writeHeapSnapshot()):
// self size by node type and by constructor, and the largest retained sizes (dominator tree), so
// a snapshot of the controller is read without a browser.
//
//   [HEAP_PROPERTIES=managedFields,…] node bench/heap-summary.ts /tmp/controller.heapsnapshot [top=30]
import { readFileSync } from 'node:fs';

interface Snapshot {
  snapshot: {
    meta: { node_fields: string[]; node_types: [string[]]; edge_fields: string[]; edge_types: [string[]] };
  };
  nodes: number[];
  edges: number[];
  strings: string[];
}

const [file, topArg] = process.argv.slice(2);
if (!file) throw new Error('usage: heap-summary.ts <file.heapsnapshot> [top]');
const top = Number(topArg ?? 30);
const snap = JSON.parse(readFileSync(file, 'utf8')) as Snapshot;
const { meta } = snap.snapshot;
const nf = meta.node_fields.length;
const ef = meta.edge_fields.length;
const nodeTypes = meta.node_types[0];
const edgeTypes = meta.edge_types[0];
const [nType, nName, nSelf, nEdges] = ['type', 'name', 'self_size', 'edge_count'].map((f) =>
  meta.node_fields.indexOf(f),
);
const [eType, eName, eTo] = ['type', 'name_or_index', 'to_node'].map((f) => meta.edge_fields.indexOf(f));
const count = snap.nodes.length / nf;
const { nodes, edges, strings } = snap;

const type = (i: number) => nodeTypes[nodes[i * nf + nType!]!]!;
const name = (i: number) => strings[nodes[i * nf + nName!]!]!;
const self = (i: number) => nodes[i * nf + nSelf!]!;
const label = (i: number) => {
  const t = type(i);
  if (t === 'object' || t === 'native') return name(i).slice(0, 60);
  if (t === 'closure') return `closure ${name(i).slice(0, 40)}`;
  return `(${t})`;
};

// Edges of node i: firstEdge[i] .. firstEdge[i+1].
const firstEdge = new Uint32Array(count + 1);
for (let i = 0; i < count; i++) firstEdge[i + 1] = firstEdge[i]! + nodes[i * nf + nEdges!]!;
const target = (e: number) => edges[e * ef + eTo!]! / nf;
const weak = (e: number) => edgeTypes[edges[e * ef + eType!]!] === 'weak';

// Self size by node type and by label.
const byType = new Map<string, number>();
const byLabel = new Map<string, { size: number; n: number }>();
let total = 0;
for (let i = 0; i < count; i++) {
  const s = self(i);
  total += s;
  byType.set(type(i), (byType.get(type(i)) ?? 0) + s);
  const l = label(i);
  const b = byLabel.get(l) ?? { size: 0, n: 0 };
  b.size += s;
  b.n++;
  byLabel.set(l, b);
}

// Dominators (Cooper, Harvey, Kennedy: iterative over reverse postorder), from node 0 (the root).
const order = new Int32Array(count).fill(-1); // postorder index
const post: number[] = [];
{
  const stack: number[] = [0];
  const cursor = new Uint32Array(count);
  const seen = new Uint8Array(count);
  seen[0] = 1;
  while (stack.length) {
    const v = stack.at(-1)!;
    const e = firstEdge[v]! + cursor[v]!;
    if (e < firstEdge[v + 1]!) {
      cursor[v]!++;
      if (weak(e)) continue;
      const w = target(e);
      if (!seen[w]) {
        seen[w] = 1;
        stack.push(w);
      }
    } else {
      stack.pop();
      order[v] = post.length;
      post.push(v);
    }
  }
}
const preds: number[][] = Array.from({ length: count }, () => []);
for (let v = 0; v < count; v++) {
  if (order[v] === -1) continue;
  for (let e = firstEdge[v]!; e < firstEdge[v + 1]!; e++) if (!weak(e)) preds[target(e)]!.push(v);
}
const idom = new Int32Array(count).fill(-1);
idom[0] = 0;
const intersect = (a: number, b: number) => {
  while (a !== b) {
    while (order[a]! < order[b]!) a = idom[a]!;
    while (order[b]! < order[a]!) b = idom[b]!;
  }
  return a;
};
for (let changed = true; changed; ) {
  changed = false;
  for (let k = post.length - 2; k >= 0; k--) {
    const v = post[k]!;
    let d = -1;
    for (const p of preds[v]!) if (idom[p] !== -1) d = d === -1 ? p : intersect(p, d);
    if (d !== -1 && idom[v] !== d) {
      idom[v] = d;
      changed = true;
    }
  }
}
const retained = new Float64Array(count);
for (const v of post) retained[v]! += self(v);
for (const v of post) if (v !== 0 && idom[v]! >= 0) retained[idom[v]!]! += retained[v]!;

const mb = (x: number) => `${(x / 2 ** 20).toFixed(2)} MB`;
console.log(`nodes ${count}, self size total ${mb(total)}`);
console.log('\nself size by node type');
for (const [t, s] of [...byType].sort((a, b) => b[1] - a[1])) console.log(`  ${mb(s).padStart(10)}  ${t}`);
console.log(`\nself size by constructor (top ${top})`);
for (const [l, b] of [...byLabel].sort((a, b) => b[1].size - a[1].size).slice(0, top))
  console.log(`  ${mb(b.size).padStart(10)}  ${String(b.n).padStart(7)}×  ${l}`);

// Largest retainers that are not the root's own synthetic children: a path of edge names from
// the root says what holds each.
const parentEdge = new Map<number, string>();
for (let v = 0; v < count; v++)
  for (let e = firstEdge[v]!; e < firstEdge[v + 1]!; e++) {
    const w = target(e);
    if (idom[w] === v && !parentEdge.has(w)) {
      const en = edges[e * ef + eName!]!;
      const et = edgeTypes[edges[e * ef + eType!]!];
      parentEdge.set(w, et === 'element' || et === 'hidden' ? `[${en}]` : String(strings[en]));
    }
  }
const path = (v: number) => {
  const parts: string[] = [];
  for (let x = v, k = 0; x !== 0 && k < 8; x = idom[x]!, k++)
    parts.unshift(`${label(x)}.${parentEdge.get(x) ?? '?'}`);
  return parts.join(' ← ').slice(0, 260);
};
console.log(`\nlargest retained sizes (top ${top}, objects retaining ≥ 5× their own size)`);
const ranked = [...post]
  .filter((v) => v !== 0 && type(v) !== 'synthetic')
  .sort((a, b) => retained[b]! - retained[a]!);
for (const v of ranked.slice(0, top))
  console.log(`  ${mb(retained[v]!).padStart(10)}  ${label(v)}   via ${path(v)}`);

// Retained by the values of named properties (e.g. managedFields), summed: what dropping them saves.
for (const prop of (process.env.HEAP_PROPERTIES ?? '').split(',').filter(Boolean)) {
  let sum = 0;
  let n = 0;
  for (let v = 0; v < count; v++)
    for (let e = firstEdge[v]!; e < firstEdge[v + 1]!; e++) {
      if (edgeTypes[edges[e * ef + eType!]!] !== 'property' || strings[edges[e * ef + eName!]!] !== prop)
        continue;
      const w = target(e);
      if (idom[w] === v) {
        sum += retained[w]!;
        n++;
      }
    }
  console.log(`\nretained by .${prop} values: ${mb(sum)} in ${n} objects`);
}
