import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';

/** Our field manager for everything the controller applies (DESIGN §4, STYLE 9). */
export const CONTROLLER_FIELD_MANAGER = 'secretsync-controller';

/** Request options that turn a client-node patch call into a server-side apply. */
export const applyOptions = setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply);
