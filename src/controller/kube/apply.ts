import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';

/** Our field manager for everything the controller applies (DESIGN §4, STYLE 9). */
export const CONTROLLER_FIELD_MANAGER = 'secretsync-controller';

/** Request options that turn a client-node patch call into a server-side apply. */
export const applyOptions = setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply);

/** The HTTP status of a failed client-node call (ApiException.code). */
export const httpStatus = (err: unknown): number | undefined => (err as { code?: number }).code;
export const isNotFound = (err: unknown) => httpStatus(err) === 404;
export const isConflict = (err: unknown) => httpStatus(err) === 409;
