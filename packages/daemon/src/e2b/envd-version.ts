/**
 * The `envdVersion` kiln reports in E2B create/connect/info answers: the highest envd version
 * whose features kiln really implements (the SDK gates features on it: 0.3.0 stdin:false, 0.4.0
 * default user, 0.5.2 CloseStdin, 0.5.7 octet-stream uploads, 0.6.2 file metadata, 0.6.3 watch
 * includeEntry, 0.6.4 allowNetworkMounts). The data plane (branch e2b-envd) owns this value and
 * raises it as it implements each feature. It must be a valid semver ≥ 0.1.0 or the SDK refuses
 * the sandbox.
 *
 * 0.5.7: everything up to octet-stream uploads is implemented (envd/: recursive watch 0.1.4,
 * stdin:false 0.3.0, default user 0.4.0, CloseStdin 0.5.2, octet-stream upload 0.5.7). Not
 * 0.6.2: file metadata (X-Metadata-* → xattrs) is not stored.
 */
export const ENVD_VERSION = '0.5.7';
