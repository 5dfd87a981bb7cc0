import { AsyncLocalStorage } from 'node:async_hooks';

/**
 * Leadership terms and the fence on writes. Each time this replica starts leading, a new term begins;
 * every pass runs inside the term it was started in (AsyncLocalStorage follows it through every await,
 * SDK internals included). A write — an AWS call that is not Get/List/Describe, a Kubernetes create,
 * patch, replace or delete — is refused unless its pass's term is the current one and this replica
 * still leads. So a pass that was running when leadership was lost writes nothing more, even if its
 * requests hang past the loss, or the replica wins again meanwhile. Requests already sent are the
 * API servers' to finish, as with client-go.
 */
export class LeadershipLostError extends Error {
  override readonly name = 'LeadershipLostError';
  constructor(operation: string) {
    super(`not sent: ${operation} belongs to a leadership term that has ended`);
  }
}

export class Fence {
  #term = 0;
  #leading = false;
  readonly #pass = new AsyncLocalStorage<number>();
  readonly #onRefused: ((operation: string) => void) | undefined;

  /** `onRefused`: told of every write refused (the controller logs it). */
  constructor(onRefused?: (operation: string) => void) {
    this.#onRefused = onRefused;
  }

  /** This replica leads from now on; answers the new term. */
  begin(): number {
    this.#leading = true;
    return ++this.#term;
  }

  /** Leadership is lost: every write of every running pass is refused from now on. */
  end(): void {
    this.#leading = false;
  }

  /** Runs a pass inside `term`. */
  run<T>(term: number, pass: () => Promise<T>): Promise<T> {
    return this.#pass.run(term, pass);
  }

  /** Whether a write may go out now (outside a pass: while leading). */
  mayWrite(): boolean {
    const term = this.#pass.getStore();
    return this.#leading && (term === undefined || term === this.#term);
  }

  check(operation: string): void {
    if (this.mayWrite()) return;
    this.#onRefused?.(operation);
    throw new LeadershipLostError(operation);
  }
}

const READ = /^(Get|List|Describe)/;
/** AWS SDK v3 middleware (initialize step): refuses a write outside the current term. */
export function awsFenceMiddleware(fence: Fence) {
  return (next: (args: unknown) => Promise<unknown>, context: { commandName?: string }) =>
    async (args: unknown) => {
      const command = (context.commandName ?? '').replace(/Command$/, '');
      if (!READ.test(command)) fence.check(command);
      return next(args);
    };
}

const KUBE_WRITE = /^(create|patch|replace|delete)/;
/** A @kubernetes/client-node API client whose writes pass the fence first. */
export function fencedKubeApi<T extends object>(api: T, fence: Fence): T {
  return new Proxy(api, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (typeof prop !== 'string' || typeof value !== 'function' || !KUBE_WRITE.test(prop)) return value;
      return (...args: unknown[]) => {
        fence.check(prop);
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
}
