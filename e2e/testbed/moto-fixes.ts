// Where moto differs from AWS in a way the product's tests would meet, set right in front of it.

import type { Interceptor } from './aws-types.ts';

/**
 * moto (5.2.5) appends on PutFunctionEventInvokeConfig and GetFunctionEventInvokeConfig answers the
 * first config ever put, so a second Put is invisible and no drift could be seen or repaired. Lambda's
 * Put replaces the whole config: deleting moto's first makes it so.
 */
export function replacingInvokeConfigPut(motoUrl: string): Interceptor {
  return async (req) => {
    if (req.service !== 'lambda' || req.method !== 'PUT' || !/\/event-invoke-config$/.test(req.path))
      return undefined;
    const auth = req.headers.authorization;
    await fetch(`${motoUrl}${req.path}${req.query.size > 0 ? `?${req.query}` : ''}`, {
      method: 'DELETE',
      headers: auth === undefined ? {} : { authorization: auth },
    });
    return undefined;
  };
}
