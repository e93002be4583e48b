/** Reported in `hello`. Bump with the package version. */
export const AGENT_VERSION = '0.1.0';
