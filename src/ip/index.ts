// One import point for the IP helpers.
export * from './types.js';
export * from './addr.js';
export * from './cidr.js';
