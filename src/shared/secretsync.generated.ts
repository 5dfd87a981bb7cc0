// Generated from crds/secretsync.io_secretsyncs.yaml by scripts/gen-types.ts. Do not edit.
// A unit test regenerates it and fails when it differs from the CRD.

export const GROUP = 'secretsync.io';
export const VERSION = 'v1alpha1';
export const PLURAL = 'secretsyncs';
export const KIND = 'SecretSync';

/** The AWS Secrets Manager secret to read. secretId and region are immutable: to sync a different AWS secret, create another SecretSync. versionStage may change. */
export interface SecretSyncSpecSource {
  /** The secret's name (for example prod/payments/db) or its full ARN (arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/payments/db-AbCdEf). A name is resolved once to the full ARN with DescribeSecret; the resolved ARN is shown in status.secretArn and is the only resource the function may read. */
  secretId: string;
  /** AWS region of the secret; it is also where the function, role and rule are created. Defaults to the region in secretId when that is an ARN, otherwise to the controller's region. */
  region?: string;
  /** The staging label to read. The function always reads the value this label points to at the time it runs, never the version named in an event, so duplicate and out-of-order events converge. */
  versionStage: string;
}

export interface SecretSyncSpecTargetKey {
  /** Key in the AWS secret's JSON object ("value" for a plain or binary secret). */
  from: string;
  /** Key in the Kubernetes Secret. Defaults to from. */
  to?: string;
}

/** Builds Secret values from the AWS secret's keys with logic-less templates, for example DATABASE_URL: "postgres://{{ username }}:{{ password }}@db:5432/app". Each {{ name }} is replaced by the value of that key of the AWS secret as the function reads it (before target.keys renames anything; "value" for a plain or binary secret), inserted byte for byte and never escaped. With a template the Secret gets only the templated keys, unless copyKeys is true. A name the AWS secret lacks fails the sync with Synced=False, InvalidTemplate, and nothing is written. */
export interface SecretSyncSpecTargetTemplate {
  /** Secret key → template. Keys follow the Secret key rules (letters, digits, '-', '_' and '.'). A template is text with {{ name }} placeholders: the name is the AWS key, blanks around it are ignored; single braces and }} are plain text (JSON templates work), {{ cannot be written as text, and there are no sections, conditions, loops or functions. */
  data: Record<string, string>;
  /** Also copy the AWS keys (every key, or those target.keys selects) next to the templated ones. A templated key takes the place of a copied key of the same name. */
  copyKeys: boolean;
}

/** The Kubernetes Secret to write, in the SecretSync's namespace. */
export interface SecretSyncSpecTarget {
  /** Name of the target Secret. Defaults to the SecretSync's name. The controller creates it empty if it does not exist; the function may get, update and patch this one Secret and nothing else. When changed, the new Secret is filled and the old one is kept (deletionPolicy Retain) or deleted (Delete). */
  name?: string;
  /** Secret type, used only when the controller creates the Secret. Typed Secrets are created with their required keys present and empty (for example tls.crt and tls.key), so the AWS secret must provide those keys. kubernetes.io/ssh-auth is not offered: the API server refuses that type with an empty ssh-privatekey, so the Secret cannot exist before its first sync. */
  type: "Opaque" | "kubernetes.io/tls" | "kubernetes.io/basic-auth";
  /** Which keys of a JSON secret to copy and under what names. Omitted: every key is copied under its own name. A plain (non-JSON) secret has the single key "value"; a binary secret too. */
  keys?: SecretSyncSpecTargetKey[];
  /** Builds Secret values from the AWS secret's keys with logic-less templates, for example DATABASE_URL: "postgres://{{ username }}:{{ password }}@db:5432/app". Each {{ name }} is replaced by the value of that key of the AWS secret as the function reads it (before target.keys renames anything; "value" for a plain or binary secret), inserted byte for byte and never escaped. With a template the Secret gets only the templated keys, unless copyKeys is true. A name the AWS secret lacks fails the sync with Synced=False, InvalidTemplate, and nothing is written. */
  template?: SecretSyncSpecTargetTemplate;
}

/** What to sync, where to, and how. */
export interface SecretSyncSpec {
  /** The AWS Secrets Manager secret to read. secretId and region are immutable: to sync a different AWS secret, create another SecretSync. versionStage may change. */
  source: SecretSyncSpecSource;
  /** The Kubernetes Secret to write, in the SecretSync's namespace. */
  target: SecretSyncSpecTarget;
  /** Merge (default) adds and updates the AWS keys, keeps keys other writers put in the Secret, and removes keys this SecretSync wrote earlier that AWS no longer has. Replace makes the Secret's data exactly the AWS keys. */
  mergePolicy: "Merge" | "Replace";
  /** What happens to the target Secret when the SecretSync is deleted. Retain (default) keeps it; Delete deletes it. The AWS resources and the Role/RoleBinding are always removed. */
  deletionPolicy: "Retain" | "Delete";
  /** Backstop: how often the controller invokes the function even if no change event arrived, as a Go duration between 1m and 8760h (for example 24h or 90m). "0" disables it. A backstop run reads the value only if the stage moved or the target no longer holds what it wrote. */
  resyncInterval: string;
  /** When true, the controller stops invoking the function and disables the EventBridge rule; provisioned resources stay. Set back to false to resume. */
  suspend: boolean;
}

export interface SecretSyncStatusCondition {
  /** Condition type, Ready or Synced. */
  type: string;
  /** Status of the condition. */
  status: "True" | "False" | "Unknown";
  /** The spec generation the condition was set for. */
  observedGeneration?: number;
  /** When the status last changed. */
  lastTransitionTime: string;
  /** Machine-readable CamelCase reason, from a fixed list (see docs/troubleshooting.md). */
  reason: string;
  /** Human-readable detail. Never contains a secret value. */
  message: string;
}

export interface SecretSyncStatusResource {
  /** What it is. The function's event invoke config and EventBridge permission, and the rule's target, go with the function and the rule. */
  kind: "IAMRole" | "LogGroup" | "Function" | "EventRule" | "AccessEntry" | "Role" | "RoleBinding" | "Secret";
  /** The ARN of an AWS resource (the principal ARN of an access entry); namespace/name of an in-cluster one. */
  id: string;
  /** AccessEntry only, the ARN of the EKS cluster that holds it. */
  cluster?: string;
  /** Secret only, the uid of the Secret when the controller created it. deletionPolicy Delete and a target rename delete only that Secret; a Secret that existed before has no uid here and is never deleted. */
  uid?: string;
}

/** What the last successful sync changed, as counts of keys. */
export interface SecretSyncStatusLastSyncChanges {
  /** Keys that were not in the Secret. */
  added?: number;
  /** Keys whose value changed. */
  updated?: number;
  /** Keys already holding the AWS value. */
  unchanged?: number;
  /** Keys this SecretSync wrote earlier and AWS no longer has (or, with Replace, any other key). */
  removed?: number;
  /** Keys written by others and left in place (Merge only). */
  kept?: number;
}

/** Observed state, written by the controller (Ready, provisioned resources) and by the function (Synced, last sync). */
export interface SecretSyncStatus {
  /** The spec generation the controller last reconciled. */
  observedGeneration?: number;
  /** Ready (written by the controller: everything is provisioned and consistent) and Synced (written by the function: the outcome of its last run). */
  conditions?: SecretSyncStatusCondition[];
  /** Name of the target Secret (spec.target.name or the SecretSync's name) as of the last complete pass. */
  targetName?: string;
  /** What the controller provisioned for this SecretSync, each as the identity it was created with. Written before anything is created; teardown, and the clean-up after a change of the controller's region, IAM path or name prefix or of spec.target.name, delete exactly these (and only what carries this SecretSync's ownership), never names recomputed from today's settings. */
  resources?: SecretSyncStatusResource[];
  /** Full ARN of the AWS secret, resolved from spec.source.secretId. */
  secretArn?: string;
  /** ARN of the function's IAM role. */
  roleArn?: string;
  /** ARN of the sync function. */
  functionArn?: string;
  /** ARN of the EventBridge rule that triggers the function. */
  ruleArn?: string;
  /** Kubernetes username of the function's EKS access entry (secretsync:<namespace>:<name>). */
  accessEntryUsername?: string;
  /** When the controller last invoked the function (first sync, force-sync or backstop resync). */
  lastInvokeTime?: string;
  /** The value of the secretsync.io/force-sync annotation the controller last acted on. */
  lastForceSync?: string;
  /** When the controller last created or changed the function's IAM role, its policies or its EKS access entry. AWS applies such changes with a delay, so a denial within minutes of this time is retried as propagation rather than reported as final. */
  accessChangedTime?: string;
  /** When a complete pass of the controller last read every provisioned resource, in AWS and in the cluster (the deep check, about once per --deep-resync-period). Between deep checks the controller compares lists of what exists (the inventory pass, once per --resync-period) with what the SecretSync needs. */
  checkedTime?: string;
  /** Digest of everything the last complete pass provisioned (names, policies, function settings, rule, access entry, RBAC), computed from the spec, the controller's settings and the AWS secret's metadata. The inventory pass gives a SecretSync a full pass when today's digest differs. Holds no secret value. */
  provisionedHash?: string;
  /** When the function last completed a sync (successful or not). */
  lastSyncTime?: string;
  /** The AWS secret version the target Secret holds. */
  syncedVersionId?: string;
  /** How many keys the last successful sync wrote. Key names and values are never shown. */
  syncedKeys?: number;
  /** What the last successful sync changed, as counts of keys. */
  lastSyncChanges?: SecretSyncStatusLastSyncChanges;
}

/** SecretSync keeps one Kubernetes Secret in step with one AWS Secrets Manager secret. For each SecretSync the controller provisions, outside the cluster, a dedicated Lambda function, IAM role, EventBridge rule and EKS access entry, and inside it a Role and RoleBinding that let that function write only the target Secret. When the AWS secret's value changes, the function copies it into the target Secret within seconds. */
export interface SecretSync {
  apiVersion: 'secretsync.io/v1alpha1';
  kind: 'SecretSync';
  metadata: {
    name: string;
    namespace: string;
    uid?: string;
    generation?: number;
    resourceVersion?: string;
    annotations?: Record<string, string>;
    labels?: Record<string, string>;
    finalizers?: string[];
    deletionTimestamp?: string;
    creationTimestamp?: string;
  };
  spec: SecretSyncSpec;
  status?: SecretSyncStatus;
}
