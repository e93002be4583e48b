export { NetworkService, type SandboxNetwork, type NetworkServiceOptions } from './service.js';
export { applyGuestNetwork, type GuestNetConfig, type NetworkAgent } from './guest.js';
export { DEFAULT_NETWORK_CONFIG, type NetworkConfig } from './config.js';
export { resolvePolicy, DEFAULT_POLICY, type NetworkPolicy, type PolicyInput, type RuleInput } from './policy.js';
export { netNames, idHexOf, type NetNames } from './names.js';
