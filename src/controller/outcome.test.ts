import { describe, expect, it } from 'vitest';
import { QuotaExceededError } from './aws/errors.ts';
import { RetryLaterError } from './errors.ts';
import { classify, SLOW_RETRY_MS } from './outcome.ts';

// Pure logic: how a pass's error becomes the Ready condition.
const T0 = Date.parse('2026-12-07T10:00:00Z');
const assumeError = () =>
  new RetryLaterError(
    'IamPropagation',
    'CreateFunction f: The role defined for the function cannot be assumed by Lambda.',
    { operation: 'CreateFunction', resource: 'f' },
    { afterMs: 5_000 },
  );

describe('classify', () => {
  it('waits as Provisioning for a role Lambda cannot assume yet, soon after it changed', () => {
    const out = classify(assumeError(), { accessChangedTime: new Date(T0).toISOString(), now: T0 + 20_000 });
    expect(out.ready).toMatchObject({ status: 'False', reason: 'Provisioning' });
    expect(out.result).toEqual({ requeueAfterMs: 5_000 });
  });

  it('says RoleNotAssumable, naming trust policy, SCP and boundary, when the role has not changed for minutes', () => {
    const out = classify(assumeError(), { accessChangedTime: new Date(T0).toISOString(), now: T0 + 600_000 });
    expect(out.ready).toMatchObject({ status: 'False', reason: 'RoleNotAssumable' });
    expect(out.ready.message).toContain('trust policy lets lambda.amazonaws.com assume it');
    expect(out.ready.message).toContain('SCP or permissions boundary');
    expect(out.result).toEqual({ requeueAfterMs: SLOW_RETRY_MS });
    expect(out.rethrow).toBeUndefined();
  });

  it('reports a full quota as QuotaExceeded and looks again slowly', () => {
    const err = new QuotaExceededError(
      'QuotaExceeded',
      'PutRule r: exceeds; EventBridge rules per event bus is full',
      {
        operation: 'PutRule',
      },
    );
    const out = classify(err);
    expect(out.ready).toMatchObject({ status: 'False', reason: 'QuotaExceeded' });
    expect(out.result).toEqual({ requeueAfterMs: SLOW_RETRY_MS });
    expect(out.rethrow).toBeUndefined();
  });
});
