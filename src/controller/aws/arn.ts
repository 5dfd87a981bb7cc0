// Region and resource name of the ARNs status records, so teardown finds a thing where it was
// created whatever today's settings say.

/** arn:partition:service:region:account:resource → region. */
export const regionOfArn = (arn: string): string => arn.split(':')[3] ?? '';

/** The part after `function:`, `rule/` or `log-group:`: the name the APIs take. */
export function nameOfArn(arn: string): string {
  const resource = arn.split(':').slice(5).join(':');
  const m = /^(?:function:|rule\/|log-group:)(.+)$/.exec(resource);
  if (!m) throw new Error(`cannot read a name from ${arn}`);
  return m[1] as string;
}
