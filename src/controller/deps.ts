import type { CoreV1Api, CustomObjectsApi, RbacAuthorizationV1Api } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { AwsClients } from './aws/clients.ts';
import type { ControllerSettings, FunctionCode } from './aws/desired.ts';
import type { Inventory } from './aws/inventory.ts';
import type { EventRecorder } from './kube/events.ts';
import type { Metrics } from './metrics.ts';
import type { TenancyMode } from './tenancy.ts';

/** What a pass works with; built once by controller.ts. */
export interface ReconcileDeps {
  kube: { custom: CustomObjectsApi; core: CoreV1Api; rbac: RbacAuthorizationV1Api };
  /** Clients for a region; EKS always in the cluster's region. */
  awsFor: (region: string) => AwsClients;
  settings: ControllerSettings;
  code: FunctionCode;
  cluster: () => ClusterState;
  tenancy: TenancyMode;
  log: Logger;
  metrics?: Metrics;
  /** Events on SecretSyncs, correlated as client-go's EventRecorder does (kube/events.ts). */
  events: EventRecorder;
  clusterRecheckMs: number;
  now?: () => number;
  /** How long a pass waits for a function it created or updated to become active (default 8 s). */
  functionWaitMs?: number;
  /** How long a pass waits for IAM to propagate a role it wrote (Lambda, EKS refuse it meanwhile; default 10 s). */
  iamWaitMs?: number;
  /**
   * The other SecretSyncs (not being deleted) whose target is this Secret, from the informer's cache:
   * a shared target is never deleted, nor written with mergePolicy Replace, while another one writes it.
   */
  targetedBy?: (namespace: string, secretName: string, except: string) => string[];
  /** The last inventory (aws/inventory.ts), once one was taken while leading. */
  inventory?: () => Inventory | undefined;
}

export interface ClusterState {
  endpoint?: string;
  certificateAuthorityData?: string;
  authenticationMode?: string;
  /** While DescribeCluster fails (ISO time of the first failure); the values above are the last good ones. */
  failingSince?: string;
  /** AWS's last error, set only while the cluster counts as unavailable (cluster-state.ts). */
  error?: string;
}
