import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

// Versions are chosen in build-binaries.sh and setup-moto.sh; keep these in step with them.
export const K8S_VERSION = '1.35.4';
export const ETCD_VERSION = '3.6.6';
export const HELM_VERSION = '3.19.5';
export const KUBECONFORM_VERSION = '0.7.0';
export const MOTO_VERSION = '5.2.5';

export const cacheDir = (): string =>
  process.env.SECRETSYNC_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'secretsync');

const cached = (name: string, version: string): string => join(cacheDir(), 'bin', `${name}-${version}`);

function pick(label: string, candidates: (string | undefined)[], hint: string): string {
  for (const c of candidates) if (c && existsSync(c)) return c;
  throw new Error(
    `test bed: ${label} not found (looked in ${candidates.filter(Boolean).join(', ')}). ${hint}`,
  );
}

const BUILD_HINT = 'Run `make testbed-deps` (or `make test`, which does it) to build it into the cache.';
const assets = process.env.KUBEBUILDER_ASSETS;

export const binaries = {
  kubeApiserver: () =>
    pick(
      'kube-apiserver',
      [
        process.env.TEST_ASSET_KUBE_APISERVER,
        assets && join(assets, 'kube-apiserver'),
        cached('kube-apiserver', K8S_VERSION),
      ],
      BUILD_HINT,
    ),
  etcd: () =>
    pick(
      'etcd',
      [process.env.TEST_ASSET_ETCD, assets && join(assets, 'etcd'), cached('etcd', ETCD_VERSION)],
      BUILD_HINT,
    ),
  kubectl: () =>
    pick(
      'kubectl',
      [process.env.TEST_ASSET_KUBECTL, assets && join(assets, 'kubectl'), cached('kubectl', K8S_VERSION)],
      BUILD_HINT,
    ),
  helm: () => pick('helm', [cached('helm', HELM_VERSION)], BUILD_HINT),
  kubeconform: () => pick('kubeconform', [cached('kubeconform', KUBECONFORM_VERSION)], BUILD_HINT),
  motoServer: () =>
    pick(
      'moto_server',
      [join(venvDir(), 'bin', 'moto_server')],
      'Run `make testbed-deps` (or `make test`) to create the moto venv.',
    ),
  python: () => pick('venv python', [join(venvDir(), 'bin', 'python')], 'Run `make testbed-deps`.'),
};

export const venvDir = (): string =>
  process.env.SECRETSYNC_VENV ?? join(cacheDir(), `venv-moto-${MOTO_VERSION}`);
