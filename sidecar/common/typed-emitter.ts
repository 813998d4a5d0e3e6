// A node:events EventEmitter whose event names and listener arguments the compiler checks. The
// hand-offs between the sidecar's stages (a committed batch, a built bundle, a put pointer) are
// events: each stage names its events once, in an interface, and a misspelt name or a listener
// that expects another payload fails the build instead of never being called.
import { EventEmitter } from 'node:events';

/** Event name → the arguments its listeners get. */
export type EventMap<E> = { [K in keyof E]: unknown[] };

export class TypedEmitter<E extends EventMap<E>> extends EventEmitter {
  override on<K extends keyof E & string>(event: K, listener: (...args: E[K]) => void): this {
    return super.on(event, listener as (...args: unknown[]) => void);
  }

  override once<K extends keyof E & string>(event: K, listener: (...args: E[K]) => void): this {
    return super.once(event, listener as (...args: unknown[]) => void);
  }

  override off<K extends keyof E & string>(event: K, listener: (...args: E[K]) => void): this {
    return super.off(event, listener as (...args: unknown[]) => void);
  }

  override emit<K extends keyof E & string>(event: K, ...args: E[K]): boolean {
    return super.emit(event, ...args);
  }
}
