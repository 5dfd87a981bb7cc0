import { describe, expect, it } from 'vitest';
import { DEFAULT_RATE_LIMITS } from './aws/rate-limit.ts';
import { ConfigError, loadControllerConfig, parseDuration } from './config.ts';

const zip = new URL('../../package.json', import.meta.url).pathname; // any readable file stands in for the zip

describe('controller configuration (pure)', () => {
  it('reads flags over env over defaults', () => {
    const c = loadControllerConfig(['--cluster-name=prod', `--lambda-zip=${zip}`], {
      AWS_REGION: 'eu-west-1',
      SECRETSYNC_CONCURRENCY: '8',
    });
    expect(c).toMatchObject({
      clusterName: 'prod',
      region: 'eu-west-1',
      concurrency: 8,
      tenancy: 'tag',
      iamPath: '/secretsync/',
    });
    expect(c.lambda).toMatchObject({
      runtime: 'nodejs24.x',
      architecture: 'arm64',
      memoryMb: 128,
      logRetentionDays: 30,
    });
    expect(c.awsRateLimits).toEqual(DEFAULT_RATE_LIMITS);
  });

  it('reads AWS rate limits over the defaults: named services change, the others keep theirs', () => {
    const c = loadControllerConfig(
      ['--cluster-name=prod', `--lambda-zip=${zip}`, '--aws-rate-limits=iam=2'],
      {
        AWS_REGION: 'eu-west-1',
        SECRETSYNC_AWS_RATE_LIMITS: 'iam=50,logs=0',
      },
    );
    expect(c.awsRateLimits).toEqual({ ...DEFAULT_RATE_LIMITS, iam: 2 });
    const fromEnv = loadControllerConfig(['--cluster-name=prod', `--lambda-zip=${zip}`], {
      AWS_REGION: 'eu-west-1',
      SECRETSYNC_AWS_RATE_LIMITS: 'iam=0.5, logs=0',
    });
    expect(fromEnv.awsRateLimits).toEqual({ ...DEFAULT_RATE_LIMITS, iam: 0.5, logs: 0 });
  });

  it('reads Lambda retries and the on-failure destination, and refuses what Lambda would', () => {
    const base = ['--cluster-name=prod', '--region=eu-west-1', `--lambda-zip=${zip}`];
    const c = loadControllerConfig(base, {});
    expect(c.lambda).toMatchObject({ invokeRetryAttempts: 2, invokeMaxEventAgeSeconds: 3600 });
    expect(c.lambda.onFailureDestination).toBeUndefined();
    const queue = 'arn:aws:sqs:eu-west-1:123456789012:secretsync-failures';
    const d = loadControllerConfig(
      [...base, '--lambda-retry-attempts=0', `--on-failure-destination=${queue}`],
      {},
    );
    expect(d.lambda).toMatchObject({ invokeRetryAttempts: 0, onFailureDestination: queue });
    let message = '';
    try {
      loadControllerConfig(
        [
          ...base,
          '--lambda-retry-attempts=3',
          '--lambda-max-event-age=30',
          '--on-failure-destination=arn:aws:s3:::b',
        ],
        {},
      );
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toContain('--lambda-retry-attempts must be an integer in 0..2');
    expect(message).toContain('--lambda-max-event-age must be an integer in 60..21600');
    expect(message).toContain('--on-failure-destination must be the ARN of an SQS queue');
  });

  it('reports every problem at once, with the flag to fix', () => {
    let message = '';
    try {
      loadControllerConfig(
        [
          '--lambda-architecture=sparc',
          '--log-retention-days=10',
          '--tenancy=open',
          '--lambda-subnets=subnet-1',
          '--lambda-zip=/nonexistent.zip',
          '--aws-rate-limits=iam=fast,s3=5,lambda',
        ],
        {},
      );
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      message = (err as Error).message;
    }
    for (const part of [
      '--cluster-name is required',
      '--region (or AWS_REGION) is required',
      '--lambda-architecture must be arm64 or x86_64',
      '--log-retention-days must be one of',
      "--tenancy must be 'tag' or 'allow-all'",
      '--lambda-subnets and --lambda-security-groups must be given together',
      'cannot be read (run `make build`',
      '--aws-rate-limits: iam=fast: the rate must be a number',
      '--aws-rate-limits: unknown service "s3"',
      '--aws-rate-limits: "lambda" is not service=requests-per-second',
    ]) {
      expect(message).toContain(part);
    }
  });

  it.each([
    ['24h', 86_400_000],
    ['1h30m', 5_400_000],
    ['90s', 90_000],
    ['1500ms', 1500],
    ['90000000000ns', 90_000],
    ['0', 0],
    ['daily', undefined],
    ['1d', undefined],
  ])('parses the Go duration %s', (s, ms) => expect(parseDuration(s)).toBe(ms));
});
