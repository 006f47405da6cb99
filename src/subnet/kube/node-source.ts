// What the node reflector needs from the API server: a list and a watch. The library-backed
// implementation is client.ts; tests use in-memory and HTTP doubles.
import type { NodeLike } from './annotations.js';

export interface NodeList {
  items: NodeLike[];
  resourceVersion: string;
}

/** How the reflector talks to the API server; the library-backed implementation is in client.ts. */
export interface NodeSource {
  list(): Promise<NodeList>;
  /**
   * Starts a watch from `resourceVersion`. `onEvent` gets each decoded line; `onDone` is called once
   * when the stream ends (no error: closed by the server). Returns a function that aborts it.
   */
  watch(resourceVersion: string, onEvent: (type: string, object: unknown) => void, onDone: (err?: unknown) => void): Promise<() => void>;
}
