import { describe, expect, it } from 'vitest';
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
