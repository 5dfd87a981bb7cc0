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
import { isNotFound, RetryLaterError } from '../errors.ts';
import { ignoreNotFound, type Manager, recordedByArn } from '../manager.ts';
import { ownedBy } from '../naming.ts';
import type { AwsEnv } from './clients.ts';
import type { DesiredRole } from './desired.ts';
import { aws } from './errors.ts';
import { samePolicy } from './policy.ts';
import { fromTagList, toTagList } from './tags.ts';

export interface LatestRole {
  role: Role;
  /** Names of its inline policies. */
  inline: string[];
  /** ARNs of its attached managed policies. */
  attached: string[];
}

/** A role ARN's name (the last path segment): IAM finds roles by name, whatever their path. */
export const roleNameOf = (arn: string) => arn.slice(arn.lastIndexOf('/') + 1);

const iamOf = (env: AwsEnv) => env.clients(env.home).iam;

export const roleManager: Manager<AwsEnv, string, DesiredRole, LatestRole> = {
  title: 'IAM role',
  recorded: recordedByArn('IAMRole'),
  id: (d) => d.arn,
  describe: roleNameOf,
  async read(env, arn) {
    const iam = iamOf(env);
    const RoleName = roleNameOf(arn);
    let role: Role | undefined;
    try {
      const out = await aws({ operation: 'GetRole', resource: RoleName }, () =>
        iam.send(new GetRoleCommand({ RoleName })),
      );
      role = out.Role;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
    if (!role) return undefined;
    try {
      return {
        role,
        inline: await listInlinePolicies(iam, RoleName),
        attached: await listAttachedPolicies(iam, RoleName),
      };
    } catch (err) {
      // Deleted between the calls.
      if (isNotFound(err)) return undefined;
      throw err;
    }
  },
  // Role names are unique per account whatever the path: one found by name under another path is
  // not the recorded role.
  matches: (l, arn) => l.role.Arn === arn,
  owned: (l, owner) => ownedBy(fromTagList(l.role.Tags), owner),
  // The path cannot be changed in place (the iamPath setting changed). The role id changes with
  // it, which the access entry notices.
  replaceBecause: (d, l) =>
    l.role.Path === d.path ? undefined : `its path is ${l.role.Path}, not ${d.path}`,
  async create(env, d) {
    const iam = iamOf(env);
    const RoleName = d.name;
    const out = await aws({ operation: 'CreateRole', resource: RoleName }, () =>
      iam.send(
        new CreateRoleCommand({
          RoleName,
          Path: d.path,
          Description: d.description,
          AssumeRolePolicyDocument: d.assumeRolePolicyDocument,
          ...(d.permissionsBoundaryArn === undefined
            ? {}
            : { PermissionsBoundary: d.permissionsBoundaryArn }),
          Tags: toTagList(d.tags),
        }),
      ),
    );
    try {
      await putPolicy(iam, d);
    } catch (err) {
      // IAM is eventually consistent: a role created a moment ago may not be found yet. The next
      // pass sees the role and puts the policy through the diff.
      if (isNotFound(err)) {
        throw new RetryLaterError(
          'IamPropagation',
          `role ${RoleName} created; its policy waits for IAM to propagate`,
          { operation: 'PutRolePolicy', resource: RoleName },
          { afterMs: 5_000, cause: err },
        );
      }
      throw err;
    }
    return { role: out.Role ?? {}, inline: [d.inlinePolicyName], attached: [] } as LatestRole;
  },
  async diff(d, l, env) {
    const fields: string[] = [];
    const { role } = l;
    if (!samePolicy(role.AssumeRolePolicyDocument ?? '{}', d.assumeRolePolicyDocument)) fields.push('trust');
    if ((role.Description ?? '') !== d.description) fields.push('description');
    if (role.PermissionsBoundary?.PermissionsBoundaryArn !== d.permissionsBoundaryArn)
      fields.push('boundary');
    if (l.inline.some((n) => n !== d.inlinePolicyName)) fields.push('otherInlinePolicies');
    if (l.attached.length > 0) fields.push('attachedPolicies');
    let current: string | undefined;
    if (l.inline.includes(d.inlinePolicyName)) {
      const iam = iamOf(env);
      const out = await aws({ operation: 'GetRolePolicy', resource: d.name }, () =>
        iam.send(new GetRolePolicyCommand({ RoleName: d.name, PolicyName: d.inlinePolicyName })),
      );
      current = out.PolicyDocument;
    }
    if (current === undefined || !samePolicy(current, d.inlinePolicyDocument)) fields.push('policy');
    return fields;
  },
  async update(env, d, l, fields) {
    const iam = iamOf(env);
    const RoleName = d.name;
    const ctx = (operation: string, resource = RoleName) => ({ operation, resource });
    if (fields.includes('trust')) {
      const PolicyDocument = d.assumeRolePolicyDocument;
      await aws(ctx('UpdateAssumeRolePolicy'), () =>
        iam.send(new UpdateAssumeRolePolicyCommand({ RoleName, PolicyDocument })),
      );
    }
    if (fields.includes('description')) {
      await aws(ctx('UpdateRole'), () =>
        iam.send(new UpdateRoleCommand({ RoleName, Description: d.description })),
      );
    }
    if (fields.includes('boundary')) {
      const PermissionsBoundary = d.permissionsBoundaryArn;
      await (PermissionsBoundary === undefined
        ? aws(ctx('DeleteRolePermissionsBoundary'), () =>
            iam.send(new DeleteRolePermissionsBoundaryCommand({ RoleName })),
          )
        : aws(ctx('PutRolePermissionsBoundary'), () =>
            iam.send(new PutRolePermissionsBoundaryCommand({ RoleName, PermissionsBoundary })),
          ));
    }
    for (const PolicyName of l.inline.filter((n) => n !== d.inlinePolicyName)) {
      await aws(ctx('DeleteRolePolicy', `${RoleName}/${PolicyName}`), () =>
        iam.send(new DeleteRolePolicyCommand({ RoleName, PolicyName })),
      );
    }
    if (fields.includes('policy')) await putPolicy(iam, d);
    for (const PolicyArn of l.attached) {
      await aws(ctx('DetachRolePolicy', `${RoleName} ${PolicyArn}`), () =>
        iam.send(new DetachRolePolicyCommand({ RoleName, PolicyArn })),
      );
    }
    return undefined;
  },
  tags: {
    desired: (d) => d.tags,
    of: (l) => fromTagList(l.role.Tags),
    async write(env, l, diff) {
      const iam = iamOf(env);
      const RoleName = l.role.RoleName as string;
      if (Object.keys(diff.set).length > 0) {
        const Tags = toTagList(diff.set);
        await aws({ operation: 'TagRole', resource: RoleName }, () =>
          iam.send(new TagRoleCommand({ RoleName, Tags })),
        );
      }
      if (diff.remove.length > 0) {
        await aws({ operation: 'UntagRole', resource: RoleName }, () =>
          iam.send(new UntagRoleCommand({ RoleName, TagKeys: diff.remove })),
        );
      }
    },
  },
  async delete(env, l) {
    const iam = iamOf(env);
    const RoleName = l.role.RoleName as string;
    // IAM refuses to delete a role that still has policies (DeleteConflict).
    for (const PolicyName of l.inline) {
      await aws({ operation: 'DeleteRolePolicy', resource: `${RoleName}/${PolicyName}` }, () =>
        iam.send(new DeleteRolePolicyCommand({ RoleName, PolicyName })),
      ).catch(ignoreNotFound);
    }
    for (const PolicyArn of l.attached) {
      await aws({ operation: 'DetachRolePolicy', resource: `${RoleName} ${PolicyArn}` }, () =>
        iam.send(new DetachRolePolicyCommand({ RoleName, PolicyArn })),
      ).catch(ignoreNotFound);
    }
    await aws({ operation: 'DeleteRole', resource: RoleName }, () =>
      iam.send(new DeleteRoleCommand({ RoleName })),
    );
  },
};

function putPolicy(iam: IAMClient, d: DesiredRole) {
  const input = { RoleName: d.name, PolicyName: d.inlinePolicyName, PolicyDocument: d.inlinePolicyDocument };
  return aws({ operation: 'PutRolePolicy', resource: d.name }, () =>
    iam.send(new PutRolePolicyCommand(input)),
  );
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
