// The version flanneld --version and flannelctl --version print; kept in step with package.json.
export const VERSION = '0.1.0';
