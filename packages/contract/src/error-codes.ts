/**
 * Every error code kiln returns, with its usual HTTP status and what it means: the registry
 * behind KilnError (errors.ts), the API's error handler and the `Error` schema in /openapi.json.
 * A unit test (error-codes.test.ts) fails when the sources raise a code that is not here.
 */

export interface ErrorCodeInfo {
  /** The HTTP status an API response with this code carries (a few codes name another in their meaning). */
  status: number;
  meaning: string;
}

const codes = {
  // The request itself.
  INVALID_ARGUMENT: { status: 400, meaning: 'a field of the request is missing, malformed or out of range (details.field names it)' },
  MALFORMED_JSON: { status: 400, meaning: 'the body is declared JSON but does not parse (or is empty)' },
  INVALID_CONTENT_LENGTH: { status: 400, meaning: 'the Content-Length header does not match the body' },
  BAD_REQUEST: { status: 400, meaning: 'the HTTP request is malformed in another way' },
  ROUTE_NOT_FOUND: { status: 404, meaning: 'no API route has this method and path' },
  BODY_TOO_LARGE: { status: 413, meaning: 'the JSON body is larger than kilnd accepts (1 MiB; file uploads stream and have no such limit)' },
  UPGRADE_REQUIRED: { status: 426, meaning: 'a terminal route is a WebSocket: the request must ask for the upgrade' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, meaning: 'the route does not take a body of this Content-Type (JSON or application/octet-stream)' },
  INTERNAL: { status: 500, meaning: 'an unexpected failure inside kilnd; the response names the request id, the log has the detail' },
  // Authentication and tenants (docs/api.md).
  UNAUTHENTICATED: { status: 401, meaning: 'a request on the TCP listener has no valid API key (details.reason: missing, malformed, unknown, wrong or revoked)' },
  ADMIN_ONLY: { status: 403, meaning: 'the route is for the admin (the unix socket) only; no API key may call it' },
  READ_ONLY_KEY: { status: 403, meaning: 'the API key has the read-only scope and the request would change something' },
  KEY_NOT_FOUND: { status: 404, meaning: 'no API key has this id' },
  TENANT_LIMIT: { status: 429, meaning: "the create would take the tenant past one of its limits (details.limit: maxSandboxes, maxMemoryMiB or maxVcpus); Retry-After says when to try again" },
  RATE_LIMITED: { status: 429, meaning: "the tenant made createsPerMinute creates in the last 60 s; Retry-After is when the oldest leaves the window" },
  // Sandboxes.
  SANDBOX_NOT_FOUND: { status: 404, meaning: 'no sandbox has this id' },
  EXEC_NOT_FOUND: { status: 404, meaning: 'no running exec has this id in the sandbox' },
  PROCESS_NOT_FOUND: { status: 404, meaning: 'no background process has this pid in the sandbox (never started, or exited and forgotten)' },
  PROCESS_NOT_RUNNING: { status: 409, meaning: 'the background process has exited, or its stdin is closed' },
  TAR_FAILED: { status: 400, meaning: "the guest's tar failed on a directory upload or download (recorded in the audit log; an upload answers INVALID_ARGUMENT, a download is cut short)" },
  PROCESS_NOT_PTY: { status: 400, meaning: 'the background process has no terminal (resize, or a terminal WebSocket)' },
  NO_SAMPLE: { status: 404, meaning: 'the sandbox has no resource sample yet (no VM, or the first sample is pending)' },
  UI_NOT_FOUND: { status: 404, meaning: 'no such dashboard file, or the dashboard is not built (npm run build)' },
  INVALID_STATE: { status: 409, meaning: 'the sandbox is in a state that does not allow this action (e.g. exec while paused)' },
  INVALID_TRANSITION: { status: 409, meaning: 'the sandbox state machine refused a transition (a concurrent action won)' },
  CANCELLED: { status: 409, meaning: 'the sandbox was destroyed while it was being created' },
  VM_NOT_STARTED: { status: 409, meaning: 'the sandbox has no VM (yet, or any more)' },
  CAPACITY_EXCEEDED: { status: 429, meaning: 'kilnd already runs maxSandboxes sandboxes; destroy one first' },
  UNSUPPORTED_OPERATION: { status: 501, meaning: "the VMM driver does not support this operation (see its capabilities)" },
  AGENT_UNAVAILABLE: { status: 503, meaning: "the sandbox's guest agent is not connected" },
  MEMORY_EXHAUSTED: { status: 503, meaning: 'the sandbox would overcommit host memory beyond memoryOvercommitRatio' },
  SHUTTING_DOWN: { status: 503, meaning: 'kilnd is stopping and takes no new work' },
  PERSONALIZE_FAILED: { status: 500, meaning: 'a restored VM could not be made unique (clock, entropy, address, hostname)' },
  GUEST_CTL_ERROR: { status: 500, meaning: "the guest's resident helper (kiln-guestctl) refused a request" },
  // Images and templates.
  POOL_MEMBER_GONE: { status: 503, meaning: 'a warm-pool VM ended while it was being handed over (the caller then gets a sandbox of its own)' },
  IMAGE_NOT_BUILT: { status: 409, meaning: 'no guest image for the current recipe: run `kilnd image build`' },
  IMAGE_BUILD_FAILED: { status: 500, meaning: 'building the guest image failed' },
  TEMPLATE_NOT_FOUND: { status: 404, meaning: 'no template has this name' },
  VOLUME_NOT_FOUND: { status: 404, meaning: 'the caller has no volume of this name' },
  VOLUME_EXISTS: { status: 409, meaning: 'the caller already has a volume of this name' },
  VOLUME_BUSY: { status: 409, meaning: 'the volume is attached read-write elsewhere (one writer at a time, no reader beside it), or read-only elsewhere and a writer was asked for; details.holder names the sandbox' },
  VOLUME_IN_USE: { status: 409, meaning: 'the volume is attached to a sandbox and cannot be removed (details.holders)' },
  VOLUME_ATTACHED: { status: 409, meaning: 'the sandbox has volumes attached: snapshot and fork are refused (the message says why)' },
  VOLUME_QUOTA: { status: 429, meaning: "the volume would take the tenant's volumes past its maxVolumeGiB limit (details.limit, details.tenant, details.quotaBytes, details.usedBytes)" },
  VOLUME_CREATE_FAILED: { status: 500, meaning: 'the volume image could not be made (mkfs.ext4 failed, disk full)' },
  VOLUME_ATTACH_FAILED: { status: 500, meaning: "a volume could not be hot-plugged into the VM or mounted in the guest (the create fails at its step 'volumes')" },
  VOLUMES_UNSUPPORTED: { status: 501, meaning: 'this kilnd or VMM driver cannot attach volumes' },
  REGISTRY_DENIED: { status: 403, meaning: "the caller may not push to this repository of the private registry (a tenant's are <tenant>/…)" },
  REGISTRY_PUSH_FAILED: { status: 502, meaning: 'the private registry refused part of a push, or docker save failed in the sandbox (the message says which)' },
  TEMPLATE_EXISTS: { status: 409, meaning: 'a template already has this name' },
  TEMPLATE_STALE: { status: 409, meaning: 'the template was made from an older guest image; rebuild it' },
  TEMPLATE_BUILD_FAILED: { status: 500, meaning: 'booting or snapshotting a template failed' },
  TEMPLATE_BUILD_STEP_FAILED: { status: 422, meaning: 'a step of the Dockerfile failed (details: step, of, instruction)' },
  TEMPLATE_PULL_FAILED: { status: 422, meaning: "an image the template pre-pulls (--pull) could not be pulled in the builder: the message names it and carries the registry's error (details: image)" },
  TEMPLATE_NOT_READY: { status: 422, meaning: "a template's start command exited or its ready check did not pass in time" },
  SNAPSHOT_FAILED: { status: 500, meaning: 'the snapshot of a sandbox failed (the sandbox keeps running)' },
  OVERLAY_FAILED: { status: 500, meaning: "a sandbox's copy-on-write disk could not be created" },
  // The VMM.
  ACCEL_UNAVAILABLE: { status: 503, meaning: 'the requested accelerator (KVM) cannot be used on this host' },
  VMM_NOT_FOUND: { status: 503, meaning: 'QEMU is missing or does not run (scripts/setup.sh installs it)' },
  VMM_LAUNCHER_MISSING: { status: 503, meaning: 'the jailing VMM launcher is not built (npm run build)' },
  VMM_USER_FAILED: { status: 503, meaning: 'the unprivileged kiln-vmm user is missing and could not be created' },
  VMM_JAIL_UNAVAILABLE: { status: 503, meaning: 'kilnd cannot jail QEMU (it is not root) and was not started with --insecure-no-jail: no VM is started unjailed' },
  VMM_PATH_UNSAFE: { status: 500, meaning: "a path in the VMM's reach is a symbolic link or not the kind of file kilnd made; kilnd refused to follow it" },
  DISK_UNSAFE: { status: 500, meaning: "a sandbox's disk header names a backing or data file kiln never made (the VMM can rewrite it); the disk was not used" },
  VMM_START_FAILED: { status: 500, meaning: 'QEMU did not start' },
  VMM_RESTORE_FAILED: { status: 500, meaning: 'QEMU could not restore a template snapshot' },
  VMM_KILL_FAILED: { status: 500, meaning: 'a QEMU process survived SIGKILL' },
  VMM_MIGRATION_FAILED: { status: 500, meaning: "QEMU's snapshot (migration) failed" },
  VMM_MIGRATION_TIMEOUT: { status: 500, meaning: "QEMU's snapshot (migration) did not finish in time" },
  QMP_CONNECT_FAILED: { status: 500, meaning: "kilnd cannot reach QEMU's control socket" },
  QMP_CLOSED: { status: 500, meaning: "QEMU's control connection closed during a command" },
  QMP_ERROR: { status: 500, meaning: 'QEMU refused a control command' },
  QMP_PROTOCOL: { status: 500, meaning: 'QEMU sent something that breaks the control protocol' },
  QMP_TIMEOUT: { status: 500, meaning: 'QEMU did not answer a control command in time' },
  CGROUP_FAILED: { status: 500, meaning: "the VM's cgroup could not be created or limited" },
  // Networking.
  NETWORK_DISABLED: { status: 404, meaning: 'kilnd runs without sandbox networking (--no-net)' },
  NETWORK_NOT_FOUND: { status: 404, meaning: 'the sandbox has no network (yet, or any more)' },
  NETWORK_EXHAUSTED: { status: 503, meaning: "no free address block is left in kilnd's subnet" },
  NETWORK_ADDRESS_IN_USE: { status: 409, meaning: "the sandbox's address block or netns name is already in use on this host (`kiln gc` removes kiln leftovers no live kilnd owns)" },
  NETWORK_SUBNET_IN_USE: { status: 409, meaning: 'another kilnd holds the lock of this sandbox subnet (kilnd refuses to start; the message names the holder)' },
  NETWORK_UNAVAILABLE: { status: 503, meaning: 'a network tool (ip, nft, dnsmasq, sysctl) or the uplink namespace is missing' },
  NETWORK_SETUP_FAILED: { status: 500, meaning: "the sandbox's namespace, devices or firewall could not be set up" },
  NETWORK_CLEANUP_FAILED: { status: 500, meaning: "the sandbox's network objects could not be removed" },
  // The sandbox proxy (docs/ports.md).
  PROXY_NO_ROUTE: { status: 400, meaning: 'a proxy request names no sandbox and port (host <port>-<id>.<domain>, Kiln-Sandbox-Id/-Port headers, or /sandboxes/<id>/ports/<port>/)' },
  PORT_NOT_EXPOSED: { status: 403, meaning: 'the sandbox does not expose this port (`kiln port expose ID PORT`)' },
  PORT_NOT_FOUND: { status: 404, meaning: 'the sandbox does not expose this port (DELETE of a port that is not exposed)' },
  PROXY_UNAUTHENTICATED: { status: 401, meaning: 'a private port was asked for with no access token, signed URL, cookie or API key' },
  PROXY_FORBIDDEN: { status: 403, meaning: "the credential is wrong for this sandbox or port: another sandbox's token, a bad or expired signature, a key of another tenant" },
  PROXY_UPSTREAM_REFUSED: { status: 502, meaning: 'nothing listens on the port inside the sandbox' },
  PROXY_UPSTREAM_FAILED: { status: 502, meaning: 'the connection into the sandbox failed or ended mid-request (the sandbox was destroyed or paused, or the guest closed it)' },
  PROXY_CONNECTION_LIMIT: { status: 503, meaning: 'the sandbox has as many proxied connections open as kilnd allows (256)' },
  // The audit log.
  AUDIT_UNAVAILABLE: { status: 503, meaning: 'the audit log cannot be written; kilnd refuses audited requests until it can' },
  AUDIT_CORRUPT: { status: 500, meaning: 'the audit log file ends in something that is not an audit record' },
  // The E2B-compatible control plane (docs/e2b.md).
  E2B_UNSUPPORTED: { status: 501, meaning: 'the E2B SDK asked for a feature kiln does not have (details.feature names it)' },
  E2B_STATE_CONFLICT: { status: 409, meaning: 'the E2B sandbox is not in a state that allows this (already paused, already running)' },
  // Errors the guest agent raised (api/guest-errors.ts adds the GUEST_ prefix to its wire code).
  GUEST_NOT_FOUND: { status: 404, meaning: 'no such file, directory or process in the guest' },
  GUEST_PERMISSION_DENIED: { status: 403, meaning: 'the guest refused access (permissions, read-only path)' },
  GUEST_EXISTS: { status: 409, meaning: 'the guest path already exists (or a directory to remove is not empty)' },
  GUEST_IS_DIRECTORY: { status: 400, meaning: 'the guest path is a directory where a file was expected' },
  GUEST_NOT_DIRECTORY: { status: 400, meaning: 'the guest path is not a directory where one was expected' },
  GUEST_INVALID_ARGUMENT: { status: 400, meaning: 'the guest agent refused an argument (bad path, bad signal, …)' },
  GUEST_CANCELLED: { status: 409, meaning: 'the guest operation was cancelled' },
  GUEST_TIMEOUT: { status: 504, meaning: 'the guest agent did not answer in time' },
  GUEST_CHANNEL_CLOSED: { status: 503, meaning: 'the channel to the guest agent closed during the request' },
  GUEST_UNKNOWN_OP: { status: 502, meaning: 'the guest agent does not know this operation (version skew)' },
  GUEST_VERSION_MISMATCH: { status: 502, meaning: 'the guest agent speaks another protocol version' },
  GUEST_PROTOCOL_ERROR: { status: 502, meaning: 'the guest agent broke the wire protocol' },
  GUEST_NOT_RUNNING: { status: 409, meaning: 'the guest process has exited or its stdin is closed' },
  GUEST_CONNECTION_REFUSED: { status: 502, meaning: 'nothing listens on the guest port' },
  GUEST_RESOURCE_EXHAUSTED: { status: 429, meaning: 'a bounded table in the guest is full (e.g. 256 running background processes)' },
  GUEST_INTERNAL: { status: 502, meaning: 'the guest agent failed unexpectedly' },
} as const satisfies Record<string, ErrorCodeInfo>;

export type ErrorCode = keyof typeof codes;
export const ERROR_CODES: Readonly<Record<ErrorCode, ErrorCodeInfo>> = codes;

export function isErrorCode(code: string): code is ErrorCode {
  return Object.hasOwn(ERROR_CODES, code);
}

/**
 * Why a sandbox failed (`sandbox.error.code` in GET /v1/sandboxes/{id}): a creation step's error
 * code (one of ERROR_CODES), or one of these, which the lifecycle sets on a running sandbox.
 */
export const SANDBOX_FAILURE_CODES = {
  VM_EXITED: 'the VM ended without being asked to (its console tail is in the message)',
  GUEST_PANIC: 'the guest kernel panicked',
  GUEST_POWEROFF: 'the guest powered itself off',
  GUEST_REBOOT: 'the guest rebooted (QEMU runs with -no-reboot, so a reboot ends the VM)',
  GUEST_UNRESPONSIVE: 'the guest agent stopped answering health checks past the grace period',
  DOCKER_NOT_READY: "the sandbox's dockerd did not answer after a restore",
  ADOPT_FAILED: 'after a kilnd restart the VM was alive but its agent did not answer',
  DAEMON_RESTARTED: 'kilnd stopped while the sandbox was being created; nothing was kept',
} as const satisfies Record<string, string>;
export type SandboxFailureCode = keyof typeof SANDBOX_FAILURE_CODES;

/** The registry as a Markdown-ish table for the OpenAPI description. */
export function errorCodeTable(): string {
  const rows = Object.entries(ERROR_CODES).map(([code, { status, meaning }]) => `| ${code} | ${status} | ${meaning} |`);
  const failures = Object.entries(SANDBOX_FAILURE_CODES).map(([code, meaning]) => `| ${code} | — | ${meaning} |`);
  return ['| code | HTTP | meaning |', '|---|---|---|', ...rows, ...failures].join('\n');
}
