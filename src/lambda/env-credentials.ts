// Lambda always hands a function its role's credentials in environment variables, so the bundle
// swaps the SDK's default provider chain (INI files, SSO, web identity, IMDS — and the nested STS,
// SSO and sign-in clients they carry) for the environment provider alone. See scripts/build.ts.
import { fromEnv } from '@aws-sdk/credential-provider-env';

export const defaultProvider = (init?: Parameters<typeof fromEnv>[0]) => fromEnv(init);
