import { ResourceInUseException } from '@aws-sdk/client-eks';
import { ThrottlingException } from '@aws-sdk/client-eventbridge';
import { NoSuchEntityException } from '@aws-sdk/client-iam';
import {
  InvalidParameterValueException,
  ResourceConflictException,
  ResourceNotFoundException,
  TooManyRequestsException,
} from '@aws-sdk/client-lambda';
import { describe, expect, it } from 'vitest';
import { isNotFound, RetryLaterError } from '../errors.ts';
import {
  AwsError,
  AwsServerError,
  aws,
  NotFoundError,
  QuotaExceededError,
  ThrottledError,
  translateAwsError,
} from './errors.ts';

const ctx = { operation: 'GetRole', resource: 'secretsync-payments-db-12345678' };
const meta = (httpStatusCode: number) => ({ $metadata: { httpStatusCode } });

// What the SDK throws for a protocol error it has no class for (e.g. IAM's Throttling).
function generic(name: string, status: number, message = 'boom', fault: 'client' | 'server' = 'client') {
  return Object.assign(new Error(message), { name, $fault: fault, ...meta(status) });
}

describe('translateAwsError', () => {
  it('maps every NotFound spelling to NotFoundError', () => {
    const errs = [
      new NoSuchEntityException({ message: 'role not found', ...meta(404) }),
      new ResourceNotFoundException({ message: 'Function not found', ...meta(404) }),
      generic('ResourceNotFoundException', 400),
      generic('NotFoundException', 404),
    ];
    for (const err of errs) {
      const t = translateAwsError(err, ctx);
      expect(t).toBeInstanceOf(NotFoundError);
      expect(isNotFound(t)).toBe(true);
      expect(t).toMatchObject({
        reason: 'NotFound',
        operation: 'GetRole',
        resource: ctx.resource,
        cause: err,
      });
    }
  });

  it('maps throttling, with the retry-after hint when AWS gives one', () => {
    const lambda = new TooManyRequestsException({
      message: 'Rate exceeded',
      retryAfterSeconds: '3',
      ...meta(429),
    });
    expect(translateAwsError(lambda, ctx)).toMatchObject({ name: 'ThrottledError', retryAfterMs: 3000 });
    const events = new ThrottlingException({ message: 'slow down', ...meta(400) });
    expect(translateAwsError(events, ctx)).toBeInstanceOf(ThrottledError);
    expect(translateAwsError(generic('Throttling', 400), ctx)).toBeInstanceOf(ThrottledError);
    expect(translateAwsError(generic('RequestLimitExceeded', 503), ctx)).toBeInstanceOf(ThrottledError);
    const unnamed = translateAwsError(generic('Whatever', 429), ctx);
    expect(unnamed).toBeInstanceOf(ThrottledError);
    expect((unnamed as ThrottledError).retryAfterMs).toBeUndefined();
  });

  it('turns "role cannot be assumed by Lambda" into RetryLater(IamPropagation), other bad parameters not', () => {
    const propagation = new InvalidParameterValueException({
      message: 'The role defined for the function cannot be assumed by Lambda.',
      ...meta(400),
    });
    expect(translateAwsError(propagation, ctx)).toMatchObject({
      name: 'RetryLaterError',
      reason: 'IamPropagation',
      afterMs: 5_000,
    });
    const invalid = new InvalidParameterValueException({ message: 'MemorySize must be ≥ 128', ...meta(400) });
    const t = translateAwsError(invalid, ctx);
    expect(t).not.toBeInstanceOf(RetryLaterError);
    expect(t).toMatchObject({
      name: 'AwsError',
      reason: 'AwsRequestFailed',
      code: 'InvalidParameterValueException',
    });
  });

  it('turns in-progress conflicts into RetryLaterError', () => {
    const lambda = new ResourceConflictException({ message: 'An update is in progress', ...meta(409) });
    expect(translateAwsError(lambda, ctx)).toMatchObject({
      name: 'RetryLaterError',
      reason: 'FunctionUpdating',
    });
    const eks = new ResourceInUseException({ message: 'in use', ...meta(409) });
    expect(translateAwsError(eks, ctx)).toMatchObject({ name: 'RetryLaterError', reason: 'ResourceInUse' });
    expect(translateAwsError(generic('ConcurrentModification', 409), ctx)).toMatchObject({
      reason: 'ConcurrentModification',
    });
    expect(translateAwsError(generic('DeleteConflict', 409), ctx)).toMatchObject({
      reason: 'DeleteConflict',
    });
  });

  it('maps 5xx to AwsServerError and access denied to reason AccessDenied', () => {
    expect(translateAwsError(generic('ServiceUnavailableException', 503, 'x', 'server'), ctx)).toBeInstanceOf(
      AwsServerError,
    );
    expect(translateAwsError(generic('InternalFailure', 500, 'x', 'server'), ctx)).toBeInstanceOf(
      AwsServerError,
    );
    expect(translateAwsError(generic('AccessDenied', 403), ctx)).toMatchObject({ reason: 'AccessDenied' });
  });

  it('treats an unreachable endpoint as transient, and leaves bugs and translated errors alone', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' });
    expect(translateAwsError(refused, ctx)).toMatchObject({
      name: 'AwsServerError',
      reason: 'AwsUnreachable',
    });
    const bug = new TypeError('x is undefined');
    expect(translateAwsError(bug, ctx)).toBe(bug);
    const done = new NotFoundError('NotFound', 'gone', ctx);
    expect(translateAwsError(done, ctx)).toBe(done);
  });

  it('names operation and resource in the message', () => {
    const t = translateAwsError(
      new NoSuchEntityException({ message: 'The role cannot be found.', ...meta(404) }),
      ctx,
    );
    expect(t.message).toBe(`GetRole ${ctx.resource}: The role cannot be found.`);
  });
});

describe('aws()', () => {
  it('returns the result, or throws the translated error', async () => {
    expect(await aws(ctx, async () => 42)).toBe(42);
    const err = await aws(ctx, async () => {
      throw new NoSuchEntityException({ message: 'nope', ...meta(404) });
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NotFoundError);
    expect(err).toBeInstanceOf(AwsError);
  });
});

describe('quotas and propagation', () => {
  it('names the full quota and how to raise it (IAM roles, EventBridge rules)', () => {
    const roles = translateAwsError(
      generic('LimitExceeded', 409, 'Cannot exceed quota for RolesPerAccount: 1000'),
      { operation: 'CreateRole', resource: 'r' },
    );
    expect(roles).toBeInstanceOf(QuotaExceededError);
    expect(roles.message).toContain('Cannot exceed quota for RolesPerAccount: 1000');
    expect(roles.message).toContain('IAM roles per account is full');
    expect(roles.message).toContain('--service-code iam --quota-code L-FE177D64');
    const rules = translateAwsError(
      generic('LimitExceededException', 400, 'The requested resource exceeds the maximum number allowed.'),
      { operation: 'PutRule', resource: 'r' },
    );
    expect(rules).toMatchObject({ name: 'QuotaExceededError', reason: 'QuotaExceeded' });
    expect(rules.message).toContain('--service-code events --quota-code L-244521F2');
  });

  it('waits for IAM: a role Lambda cannot assume yet, a principal EKS does not know yet', () => {
    const lambda = new InvalidParameterValueException({
      message: 'The role defined for the function cannot be assumed by Lambda.',
      ...meta(400),
    });
    expect(translateAwsError(lambda, { operation: 'CreateFunction' })).toMatchObject({
      name: 'RetryLaterError',
      reason: 'IamPropagation',
      operation: 'CreateFunction',
    });
    const eks = generic(
      'InvalidParameterException',
      400,
      'The specified principalArn is invalid: invalid principal',
    );
    expect(translateAwsError(eks, { operation: 'CreateAccessEntry' })).toMatchObject({
      name: 'RetryLaterError',
      reason: 'IamPropagation',
    });
    // Another invalid parameter is no propagation.
    expect(translateAwsError(generic('InvalidParameterException', 400, 'bad tag'), ctx)).toMatchObject({
      name: 'AwsError',
      reason: 'AwsRequestFailed',
    });
  });
});
