/**
 * A fence in front of a {@linkcode Store}: the same store until
 * {@linkcode FencedStore.fence} is called, after which every call fails at
 * once with {@linkcode StoreUnavailableError}. A scheduler that steps down
 * fences the store its core was given, so that work still queued in the old
 * core can write nothing after the step-down.
 *
 * @module
 */
import { type Store, StoreUnavailableError } from "./store.ts";

/** A store view that can be cut off. */
export interface FencedStore {
  /** The store to hand out: the original until fenced. */
  readonly store: Store;
  /** Refuses every later call (calls already running finish). */
  fence(reason: string): void;
  /** Whether {@linkcode FencedStore.fence} was called. */
  readonly fenced: boolean;
}

/**
 * Wraps `store`. Every method of the store (present and future ones) goes
 * through the fence; `description` and other plain properties pass through.
 */
export function fencedStore(store: Store): FencedStore {
  let why: string | undefined;
  const view = new Proxy(store, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (typeof value !== "function") return value;
      return (...args: unknown[]) => {
        if (why !== undefined) {
          return Promise.reject(
            new StoreUnavailableError(
              `Cannot use ${target.description} from here any more: ${why}`,
            ),
          );
        }
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return {
    store: view,
    fence(reason: string) {
      why ??= reason;
    },
    get fenced() {
      return why !== undefined;
    },
  };
}
