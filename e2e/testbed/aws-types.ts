import type { IncomingHttpHeaders } from 'node:http';

/** One AWS API request as the front door sees it, already read and classified. */
export interface AwsRequest {
  method: string;
  /** Path without the query string, e.g. `/2015-03-31/functions/f/invocations`. */
  path: string;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
  body: Buffer;
  /** Signing name from the SigV4 credential scope: `secretsmanager`, `lambda`, `eks`, `iam`, `sts`, `events`, `logs`. */
  service: string;
  /** Operation when the protocol names it (X-Amz-Target or Action=); undefined for REST protocols (lambda, eks). */
  operation?: string;
  region: string;
  /** Access key id from the SigV4 credential scope. */
  accessKeyId?: string;
}

export interface AwsResponse {
  status: number;
  headers: Record<string, string>;
  body: Buffer | string;
}

/**
 * A piece of the test bed that answers some requests itself (returns a response) and lets the
 * rest through to moto (returns undefined).
 */
export type Interceptor = (req: AwsRequest) => Promise<AwsResponse | undefined>;

/** Called after moto answered a request the front door forwarded. */
export type Observer = (req: AwsRequest, res: AwsResponse) => void | Promise<void>;

/** Where the emulated AWS lives, for test-bed components that call it themselves. */
export interface AwsEndpoint {
  /** The front door (what the product's SDK clients use). */
  url: string;
  /** moto directly, bypassing interceptors, observers and fault injection. */
  motoUrl: string;
  region: string;
  accountId: string;
  /** Admin credentials (moto accepts any; these are the account's root in moto). */
  credentials: { accessKeyId: string; secretAccessKey: string };
}
