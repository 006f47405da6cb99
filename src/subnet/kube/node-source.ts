// What the node reflector needs from the API server: a list and a watch. The HTTP implementation is
// client.ts (lists through the client library, the watch through watch-request.ts).
import type { NodeLike } from './annotations.js';
import type { WatchHandlers } from './watch-request.js';

export type { WatchHandlers } from './watch-request.js';

export interface NodeList {
  items: NodeLike[];
  resourceVersion: string;
}

export interface NodeWatchParams {
  /** Watch from here ('' for "now"). */
  resourceVersion: string;
  /** The API server ends the watch after this long (client-go: 5 to 10 min, random). */
  timeoutSeconds: number;
}

/** How the reflector talks to the API server. */
export interface NodeSource {
  list(): Promise<NodeList>;
  /**
   * Starts a node watch with bookmarks and returns at once the function that aborts it; after an
   * abort no handler is called and the request's connection is gone.
   */
  watch(params: NodeWatchParams, handlers: WatchHandlers): () => void;
}
