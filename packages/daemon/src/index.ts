export { startDaemon, type Daemon } from './daemon.js';
export { DEFAULT_CONFIG, type DaemonConfig } from './config.js';
export { KilnError } from './errors.js';
export { buildImage, findImage, type ImageManifest } from './image/index.js';
export { chooseAccel } from './vmm/accel.js';
export { buildDefaultTemplate } from './template/default-template.js';
export { KILN_VERSION } from './version.js';
export { verifyChain, type VerifyResult } from './audit/verify.js';
export { runDoctor, type CheckResult } from './doctor/checks.js';
