import type { IncomingHttpHeaders } from 'node:http';

/**
 * Names AWS API calls from their wire form, for routing, fault injection and call records.
 * JSON protocols name the operation in X-Amz-Target, query protocols in Action=; the REST
 * protocols of Lambda and EKS are named here from method + path.
 */
const REST_ROUTES: [service: string, method: string, path: RegExp, operation: string][] = [
  ['lambda', 'POST', /^\/2015-03-31\/functions\/?$/, 'CreateFunction'],
  ['lambda', 'GET', /^\/2015-03-31\/functions\/?$/, 'ListFunctions'],
  ['lambda', 'GET', /^\/2015-03-31\/functions\/[^/]+\/?$/, 'GetFunction'],
  ['lambda', 'DELETE', /^\/2015-03-31\/functions\/[^/]+\/?$/, 'DeleteFunction'],
  ['lambda', 'GET', /^\/2015-03-31\/functions\/[^/]+\/configuration$/, 'GetFunctionConfiguration'],
  ['lambda', 'PUT', /^\/2015-03-31\/functions\/[^/]+\/configuration$/, 'UpdateFunctionConfiguration'],
  ['lambda', 'PUT', /^\/2015-03-31\/functions\/[^/]+\/code$/, 'UpdateFunctionCode'],
  ['lambda', 'POST', /^\/2015-03-31\/functions\/[^/]+\/invocations$/, 'Invoke'],
  ['lambda', 'POST', /^\/2015-03-31\/functions\/[^/]+\/policy$/, 'AddPermission'],
  ['lambda', 'GET', /^\/2015-03-31\/functions\/[^/]+\/policy$/, 'GetPolicy'],
  ['lambda', 'DELETE', /^\/2015-03-31\/functions\/[^/]+\/policy\/[^/]+$/, 'RemovePermission'],
  ['lambda', 'GET', /^\/2017-03-31\/tags\//, 'ListTags'],
  ['lambda', 'POST', /^\/2017-03-31\/tags\//, 'TagResource'],
  ['lambda', 'DELETE', /^\/2017-03-31\/tags\//, 'UntagResource'],
  ['lambda', 'PUT', /^\/2019-09-25\/functions\/[^/]+\/event-invoke-config$/, 'PutFunctionEventInvokeConfig'],
  [
    'lambda',
    'POST',
    /^\/2019-09-25\/functions\/[^/]+\/event-invoke-config$/,
    'UpdateFunctionEventInvokeConfig',
  ],
  ['lambda', 'GET', /^\/2019-09-25\/functions\/[^/]+\/event-invoke-config$/, 'GetFunctionEventInvokeConfig'],
  [
    'lambda',
    'DELETE',
    /^\/2019-09-25\/functions\/[^/]+\/event-invoke-config$/,
    'DeleteFunctionEventInvokeConfig',
  ],
  ['lambda', 'GET', /^\/2016-08-19\/account-settings\/?$/, 'GetAccountSettings'],
  ['lambda', 'GET', /^\/2018-10-31\/layers\/?$/, 'ListLayers'],
  ['lambda', 'GET', /^\/2018-10-31\/layers\/[^/]+\/versions\/?$/, 'ListLayerVersions'],
  ['eks', 'POST', /^\/clusters\/?$/, 'CreateCluster'],
  ['eks', 'GET', /^\/clusters\/?$/, 'ListClusters'],
  ['eks', 'GET', /^\/clusters\/[^/]+\/?$/, 'DescribeCluster'],
  ['eks', 'DELETE', /^\/clusters\/[^/]+\/?$/, 'DeleteCluster'],
  ['eks', 'POST', /^\/clusters\/[^/]+\/access-entries\/?$/, 'CreateAccessEntry'],
  ['eks', 'GET', /^\/clusters\/[^/]+\/access-entries\/?$/, 'ListAccessEntries'],
  ['eks', 'GET', /^\/clusters\/[^/]+\/access-entries\/[^/]+$/, 'DescribeAccessEntry'],
  ['eks', 'POST', /^\/clusters\/[^/]+\/access-entries\/[^/]+$/, 'UpdateAccessEntry'],
  ['eks', 'DELETE', /^\/clusters\/[^/]+\/access-entries\/[^/]+$/, 'DeleteAccessEntry'],
  ['eks', 'GET', /^\/tags\//, 'ListTagsForResource'],
  ['eks', 'POST', /^\/tags\//, 'TagResource'],
  ['eks', 'DELETE', /^\/tags\//, 'UntagResource'],
];

export interface Classified {
  service: string;
  operation: string;
  region: string;
  accessKeyId?: string;
}

const CREDENTIAL = /Credential=([^/,\s]+)\/\d{8}\/([^/]+)\/([^/]+)\/aws4_request/;

export function classify(
  method: string,
  path: string,
  headers: IncomingHttpHeaders,
  body: Buffer,
): Classified {
  const auth = String(headers.authorization ?? '');
  const m = CREDENTIAL.exec(auth);
  const service = m?.[3] ?? 'unknown';
  const region = m?.[2] ?? 'us-east-1';
  const accessKeyId = m?.[1];
  const target = headers['x-amz-target'];
  let operation: string | undefined;
  if (typeof target === 'string') operation = target.split('.').pop();
  if (!operation && String(headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded')) {
    operation = new URLSearchParams(body.toString('utf8')).get('Action') ?? undefined;
  }
  if (!operation) {
    operation = REST_ROUTES.find(([s, mth, re]) => s === service && mth === method && re.test(path))?.[3];
  }
  return {
    service,
    operation: operation ?? `${method} ${path}`,
    region,
    ...(accessKeyId ? { accessKeyId } : {}),
  };
}

/** A protocol-correct throttling error, so the SDK's retry strategy recognises it. */
export function throttlingError(service: string): {
  status: number;
  headers: Record<string, string>;
  body: string;
} {
  if (service === 'iam' || service === 'sts') {
    return {
      status: 400,
      headers: { 'content-type': 'text/xml' },
      body: '<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>testbed-fault</RequestId></ErrorResponse>',
    };
  }
  const code = service === 'lambda' ? 'TooManyRequestsException' : 'ThrottlingException';
  return {
    status: service === 'lambda' ? 429 : 400,
    headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-errortype': code },
    body: JSON.stringify({ __type: code, message: 'Rate exceeded' }),
  };
}

export function serverError(
  service: string,
  status: number,
): { status: number; headers: Record<string, string>; body: string } {
  const code = status === 503 ? 'ServiceUnavailable' : 'InternalFailure';
  if (service === 'iam' || service === 'sts') {
    return {
      status,
      headers: { 'content-type': 'text/xml' },
      body: `<ErrorResponse><Error><Type>Receiver</Type><Code>${code}</Code><Message>injected by the test bed</Message></Error><RequestId>testbed-fault</RequestId></ErrorResponse>`,
    };
  }
  return {
    status,
    headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-errortype': code },
    body: JSON.stringify({ __type: code, message: 'injected by the test bed' }),
  };
}

/** A service's own error in the JSON protocols (Secrets Manager, EventBridge, …): header and __type. */
export function jsonError(
  status: number,
  code: string,
  message: string,
): { status: number; headers: Record<string, string>; body: string } {
  return {
    status,
    headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-errortype': code },
    body: JSON.stringify({ __type: code, message }),
  };
}
