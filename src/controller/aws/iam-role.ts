// The function's execution role: trust policy, the one inline policy, permissions boundary, tags.
// The role may do exactly what the desired inline policy says (DESIGN §4, §6), so other inline
// policies and attached managed policies found on it are drift and are removed.

import {
  CreateRoleCommand,
  DeleteRoleCommand,
  DeleteRolePermissionsBoundaryCommand,
  DeleteRolePolicyCommand,
  DetachRolePolicyCommand,
  GetRoleCommand,
  GetRolePolicyCommand,
  type IAMClient,
  PutRolePermissionsBoundaryCommand,
  PutRolePolicyCommand,
  paginateListAttachedRolePolicies,
  paginateListRolePolicies,
  type Role,
  TagRoleCommand,
  UntagRoleCommand,
  UpdateAssumeRolePolicyCommand,
  UpdateRoleCommand,
} from '@aws-sdk/client-iam';
import { type OwnerRef, ownedBy } from '../naming.ts';
import type { AwsClients } from './clients.ts';
import type { DesiredRole } from './desired.ts';
import { aws, isNotFound, NotOursError, RetryLaterError } from './errors.ts';
import { samePolicy } from './policy.ts';
import { diffTags, fromTagList, toTagList } from './tags.ts';

export interface RoleResult {
  arn: string;
  /** The role's unique id (AROA…): EKS binds the access entry to it, not to the ARN. */
  roleId: string;
  changed: boolean;
}

const KIND = 'IAM role';

export async function ensureRole(
  clients: Pick<AwsClients, 'iam'>,
  desired: DesiredRole,
  owner: OwnerRef,
): Promise<RoleResult> {
  const { iam } = clients;
  const role = await getRole(iam, desired.name);
  if (role === undefined) return createRole(iam, desired);
  if (!ownedBy(fromTagList(role.Tags), owner)) {
    throw new NotOursError(KIND, { operation: 'GetRole', resource: desired.name });
  }
  // The path cannot be changed in place (the iamPath setting changed): re-create. The role id
  // changes with it, which the access entry's ensure notices.
  if (role.Path !== desired.path) {
    await deleteOwnedRole(iam, desired.name);
    return createRole(iam, desired);
  }

  const ctx = (operation: string) => ({ operation, resource: desired.name });
  const RoleName = desired.name;
  let changed = false;
  if (!samePolicy(role.AssumeRolePolicyDocument ?? '{}', desired.assumeRolePolicyDocument)) {
    const PolicyDocument = desired.assumeRolePolicyDocument;
    await aws(ctx('UpdateAssumeRolePolicy'), () =>
      iam.send(new UpdateAssumeRolePolicyCommand({ RoleName, PolicyDocument })),
    );
    changed = true;
  }
  if ((role.Description ?? '') !== desired.description) {
    await aws(ctx('UpdateRole'), () =>
      iam.send(new UpdateRoleCommand({ RoleName, Description: desired.description })),
    );
    changed = true;
  }
  const boundary = role.PermissionsBoundary?.PermissionsBoundaryArn;
  if (boundary !== desired.permissionsBoundaryArn) {
    if (desired.permissionsBoundaryArn === undefined) {
      await aws(ctx('DeleteRolePermissionsBoundary'), () =>
        iam.send(new DeleteRolePermissionsBoundaryCommand({ RoleName })),
      );
    } else {
      const PermissionsBoundary = desired.permissionsBoundaryArn;
      await aws(ctx('PutRolePermissionsBoundary'), () =>
        iam.send(new PutRolePermissionsBoundaryCommand({ RoleName, PermissionsBoundary })),
      );
    }
    changed = true;
  }
  const tags = diffTags(desired.tags, fromTagList(role.Tags));
  if (Object.keys(tags.set).length > 0) {
    await aws(ctx('TagRole'), () => iam.send(new TagRoleCommand({ RoleName, Tags: toTagList(tags.set) })));
    changed = true;
  }
  if (tags.remove.length > 0) {
    await aws(ctx('UntagRole'), () => iam.send(new UntagRoleCommand({ RoleName, TagKeys: tags.remove })));
    changed = true;
  }
  if (await ensureOnlyOurPolicy(iam, desired)) changed = true;
  return { arn: role.Arn as string, roleId: role.RoleId as string, changed };
}

/** Deletes the role when it is ours; `gone` only once GetRole says NoSuchEntity. */
export async function deleteRole(
  clients: Pick<AwsClients, 'iam'>,
  names: { roleName: string },
  owner: OwnerRef,
): Promise<{ gone: boolean }> {
  const { iam } = clients;
  const role = await getRole(iam, names.roleName);
  if (role === undefined) return { gone: true };
  if (!ownedBy(fromTagList(role.Tags), owner)) {
    throw new NotOursError(KIND, { operation: 'GetRole', resource: names.roleName });
  }
  await deleteOwnedRole(iam, names.roleName);
  return { gone: (await getRole(iam, names.roleName)) === undefined };
}

async function getRole(iam: IAMClient, RoleName: string): Promise<Role | undefined> {
  try {
    const out = await aws({ operation: 'GetRole', resource: RoleName }, () =>
      iam.send(new GetRoleCommand({ RoleName })),
    );
    return out.Role;
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

async function createRole(iam: IAMClient, desired: DesiredRole): Promise<RoleResult> {
  const RoleName = desired.name;
  const out = await aws({ operation: 'CreateRole', resource: RoleName }, () =>
    iam.send(
      new CreateRoleCommand({
        RoleName,
        Path: desired.path,
        Description: desired.description,
        AssumeRolePolicyDocument: desired.assumeRolePolicyDocument,
        ...(desired.permissionsBoundaryArn === undefined
          ? {}
          : { PermissionsBoundary: desired.permissionsBoundaryArn }),
        Tags: toTagList(desired.tags),
      }),
    ),
  );
  try {
    await putPolicy(iam, desired);
  } catch (err) {
    // IAM is eventually consistent: a role created a moment ago may not be found yet. The next pass
    // sees the role and puts the policy through the diff.
    if (isNotFound(err)) {
      throw new RetryLaterError(
        'IamPropagation',
        `role ${RoleName} created; its policy waits for IAM to propagate`,
        {
          operation: 'PutRolePolicy',
          resource: RoleName,
        },
        { afterMs: 5_000, cause: err },
      );
    }
    throw err;
  }
  return { arn: out.Role?.Arn as string, roleId: out.Role?.RoleId as string, changed: true };
}

function putPolicy(iam: IAMClient, desired: DesiredRole) {
  const input = {
    RoleName: desired.name,
    PolicyName: desired.inlinePolicyName,
    PolicyDocument: desired.inlinePolicyDocument,
  };
  return aws({ operation: 'PutRolePolicy', resource: desired.name }, () =>
    iam.send(new PutRolePolicyCommand(input)),
  );
}

/** Puts our inline policy when missing or different; removes every other inline or attached policy. */
async function ensureOnlyOurPolicy(iam: IAMClient, desired: DesiredRole): Promise<boolean> {
  const RoleName = desired.name;
  let changed = false;
  const inline = await listInlinePolicies(iam, RoleName);
  for (const PolicyName of inline.filter((n) => n !== desired.inlinePolicyName)) {
    await aws({ operation: 'DeleteRolePolicy', resource: `${RoleName}/${PolicyName}` }, () =>
      iam.send(new DeleteRolePolicyCommand({ RoleName, PolicyName })),
    );
    changed = true;
  }
  let current: string | undefined;
  if (inline.includes(desired.inlinePolicyName)) {
    const out = await aws({ operation: 'GetRolePolicy', resource: RoleName }, () =>
      iam.send(new GetRolePolicyCommand({ RoleName, PolicyName: desired.inlinePolicyName })),
    );
    current = out.PolicyDocument;
  }
  if (current === undefined || !samePolicy(current, desired.inlinePolicyDocument)) {
    await putPolicy(iam, desired);
    changed = true;
  }
  for (const PolicyArn of await listAttachedPolicies(iam, RoleName)) {
    await aws({ operation: 'DetachRolePolicy', resource: `${RoleName} ${PolicyArn}` }, () =>
      iam.send(new DetachRolePolicyCommand({ RoleName, PolicyArn })),
    );
    changed = true;
  }
  return changed;
}

async function deleteOwnedRole(iam: IAMClient, RoleName: string): Promise<void> {
  // IAM refuses to delete a role that still has policies (DeleteConflict).
  for (const PolicyName of await listInlinePolicies(iam, RoleName)) {
    await aws({ operation: 'DeleteRolePolicy', resource: `${RoleName}/${PolicyName}` }, () =>
      iam.send(new DeleteRolePolicyCommand({ RoleName, PolicyName })),
    ).catch(ignoreNotFound);
  }
  for (const PolicyArn of await listAttachedPolicies(iam, RoleName)) {
    await aws({ operation: 'DetachRolePolicy', resource: `${RoleName} ${PolicyArn}` }, () =>
      iam.send(new DetachRolePolicyCommand({ RoleName, PolicyArn })),
    ).catch(ignoreNotFound);
  }
  await aws({ operation: 'DeleteRole', resource: RoleName }, () =>
    iam.send(new DeleteRoleCommand({ RoleName })),
  ).catch(ignoreNotFound);
}

function listInlinePolicies(iam: IAMClient, RoleName: string): Promise<string[]> {
  return aws({ operation: 'ListRolePolicies', resource: RoleName }, async () => {
    const names: string[] = [];
    for await (const page of paginateListRolePolicies({ client: iam }, { RoleName }))
      names.push(...(page.PolicyNames ?? []));
    return names;
  });
}

function listAttachedPolicies(iam: IAMClient, RoleName: string): Promise<string[]> {
  return aws({ operation: 'ListAttachedRolePolicies', resource: RoleName }, async () => {
    const arns: string[] = [];
    for await (const page of paginateListAttachedRolePolicies({ client: iam }, { RoleName })) {
      for (const p of page.AttachedPolicies ?? []) if (p.PolicyArn) arns.push(p.PolicyArn);
    }
    return arns;
  });
}

function ignoreNotFound(err: unknown): void {
  if (!isNotFound(err)) throw err;
}
