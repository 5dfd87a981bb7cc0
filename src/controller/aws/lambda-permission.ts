// The statement in the function's resource policy that lets EventBridge invoke it for our rule
// only. Added when missing, replaced (remove, add) when it differs; statements others added are not
// ours to judge and stay. Part of the function: deleted with it, never recorded on its own.

import { AddPermissionCommand, GetPolicyCommand, RemovePermissionCommand } from '@aws-sdk/client-lambda';
import { isNotFound } from '../errors.ts';
import { ignoreNotFound, type Manager } from '../manager.ts';
import { nameOfArn } from './arn.ts';
import type { AwsEnv } from './clients.ts';
import type { DesiredPermission } from './desired.ts';
import { aws } from './errors.ts';
import { lambdaOf } from './lambda-function.ts';
import { samePolicy } from './policy.ts';

interface PermissionId {
  functionArn: string;
  statementId: string;
}

export const permissionManager: Manager<AwsEnv, PermissionId, DesiredPermission, unknown> = {
  title: 'Lambda permission',
  id: (d) => ({ functionArn: d.functionArn, statementId: d.statementId }),
  describe: (id) => `${nameOfArn(id.functionArn)}/${id.statementId}`,
  async read(env, id) {
    const FunctionName = nameOfArn(id.functionArn);
    let policy: string | undefined;
    try {
      const out = await aws({ operation: 'GetPolicy', resource: FunctionName }, () =>
        lambdaOf(env, id.functionArn).send(new GetPolicyCommand({ FunctionName })),
      );
      policy = out.Policy;
    } catch (err) {
      // A function without any resource policy answers ResourceNotFoundException.
      if (isNotFound(err)) return undefined;
      throw err;
    }
    const doc = JSON.parse(policy ?? '{}') as { Statement?: unknown };
    const statements = Array.isArray(doc.Statement) ? doc.Statement : doc.Statement ? [doc.Statement] : [];
    return statements.find((s: unknown) => (s as { Sid?: unknown }).Sid === id.statementId);
  },
  async create(env, d) {
    await add(env, d);
    return statement(d);
  },
  diff: (d, current) =>
    samePolicy({ Statement: [current] }, { Statement: [statement(d)] }) ? [] : ['statement'],
  async update(env, d) {
    await remove(env, d).catch(ignoreNotFound);
    await add(env, d);
    return statement(d);
  },
  async delete(env, _l, id) {
    await remove(env, id);
  },
};

/** The statement as Lambda stores it after AddPermission. */
function statement(d: DesiredPermission) {
  return {
    Sid: d.statementId,
    Effect: 'Allow',
    Principal: { Service: d.principal },
    Action: d.action,
    Resource: d.functionArn,
    Condition: {
      StringEquals: { 'AWS:SourceAccount': d.sourceAccount },
      ArnLike: { 'AWS:SourceArn': d.sourceArn },
    },
  };
}

function add(env: AwsEnv, d: DesiredPermission) {
  const FunctionName = nameOfArn(d.functionArn);
  return aws({ operation: 'AddPermission', resource: `${FunctionName}/${d.statementId}` }, () =>
    lambdaOf(env, d.functionArn).send(
      new AddPermissionCommand({
        FunctionName,
        StatementId: d.statementId,
        Action: d.action,
        Principal: d.principal,
        SourceArn: d.sourceArn,
        SourceAccount: d.sourceAccount,
      }),
    ),
  );
}

function remove(env: AwsEnv, id: PermissionId) {
  const FunctionName = nameOfArn(id.functionArn);
  return aws({ operation: 'RemovePermission', resource: `${FunctionName}/${id.statementId}` }, () =>
    lambdaOf(env, id.functionArn).send(
      new RemovePermissionCommand({ FunctionName, StatementId: id.statementId }),
    ),
  );
}
