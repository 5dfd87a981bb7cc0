import type { FunctionConfiguration } from '@aws-sdk/client-lambda';
import { describe, expect, it } from 'vitest';
import { READY } from '../manager.ts';
import { healthOf } from './lambda-function.ts';

// Pure: what Lambda's State and LastUpdateStatus mean for the generic ensure (docs: "Lambda function
// states"). moto finishes every create and update at once, so these states are only met here.
const config = (c: Partial<FunctionConfiguration>): FunctionConfiguration => c as FunctionConfiguration;

describe('healthOf', () => {
  it('is ready when Active and the last update succeeded (or there was none)', () => {
    expect(healthOf(config({ State: 'Active', LastUpdateStatus: 'Successful' }))).toEqual(READY);
    expect(healthOf(config({ State: 'Active' }))).toEqual(READY);
    expect(healthOf(config({}))).toEqual(READY);
  });

  it('is busy while Pending (being created) or while an update is InProgress', () => {
    expect(healthOf(config({ State: 'Pending', LastUpdateStatus: 'InProgress' }))).toEqual({
      state: 'busy',
      message: 'is being created',
    });
    expect(healthOf(config({ State: 'Active', LastUpdateStatus: 'InProgress' }))).toEqual({
      state: 'busy',
      message: 'has an update in progress',
    });
  });

  it('is failed, to be re-created, when State is Failed: with Lambda’s code and reason', () => {
    expect(
      healthOf(
        config({
          State: 'Failed',
          StateReasonCode: 'InvalidSubnet',
          StateReason: 'The subnet subnet-1 does not exist',
          LastUpdateStatus: 'Successful',
        }),
      ),
    ).toEqual({
      state: 'failed',
      code: 'InvalidSubnet',
      message: 'The subnet subnet-1 does not exist',
      recreate: true,
    });
    expect(healthOf(config({ State: 'Failed' }))).toEqual({
      state: 'failed',
      code: 'Failed',
      message: 'Lambda reports the function as Failed',
      recreate: true,
    });
  });

  it('is inactive when Lambda reclaimed it after a long idle time (woken by use, not re-created)', () => {
    expect(
      healthOf(config({ State: 'Inactive', StateReasonCode: 'Idle', StateReason: 'The function is idle' })),
    ).toEqual({ state: 'inactive', code: 'Idle', message: 'The function is idle' });
    expect(healthOf(config({ State: 'Inactive' }))).toMatchObject({ state: 'inactive', code: 'Idle' });
  });

  it('is failed, but kept, when its last update failed: the previous configuration still runs', () => {
    expect(
      healthOf(
        config({
          State: 'Active',
          LastUpdateStatus: 'Failed',
          LastUpdateStatusReasonCode: 'EniLimitExceeded',
          LastUpdateStatusReason: 'ENI limit reached',
        }),
      ),
    ).toEqual({
      state: 'failed',
      code: 'EniLimitExceeded',
      message: 'its last update failed (ENI limit reached); the previous configuration still runs',
      recreate: false,
    });
    expect(healthOf(config({ State: 'Active', LastUpdateStatus: 'Failed' }))).toMatchObject({
      code: 'UpdateFailed',
      recreate: false,
    });
  });

  it('judges State before LastUpdateStatus', () => {
    expect(healthOf(config({ State: 'Failed', LastUpdateStatus: 'InProgress' }))).toMatchObject({
      state: 'failed',
      recreate: true,
    });
    expect(healthOf(config({ State: 'Inactive', LastUpdateStatus: 'Failed' })).state).toBe('inactive');
  });
});
