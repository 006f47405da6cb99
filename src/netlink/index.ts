// Public surface of the netlink package.
export { Netlink } from './netlink.js';
export { NetlinkError, isExists, isNotFound } from './errors.js';
export type { ConnOptions } from './conn.js';
export type { NetlinkTransport } from './socket.js';
export * from './types.js';
export * as nl from './constants.js';
export { watchLinks, type LinkEvent, type LinkWatch } from './watch.js';
