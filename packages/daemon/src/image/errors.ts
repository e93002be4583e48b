/** Coded errors of the image builder (codes: IMAGE_BUILD_FAILED, MISSING_HOST_TOOL, AGENT_BUNDLE_MISSING). */
import { KilnError } from '../errors.js';

/** A build step failed; `details` carries the step and, for commands, the tail of their output. */
export class ImageBuildError extends KilnError {
  constructor(message: string, opts: { cause?: unknown; details?: unknown } = {}) {
    super('IMAGE_BUILD_FAILED', message, { status: 500, ...opts });
    this.name = 'ImageBuildError';
  }
}

/** A binary the build needs is not on this host; the message names the Debian package to install. */
export class MissingHostToolError extends KilnError {
  readonly tool: string;
  readonly debianPackage: string;

  constructor(tool: string, debianPackage: string) {
    super('MISSING_HOST_TOOL', `${tool} not found: apt-get install ${debianPackage}`, {
      status: 500,
      details: { tool, package: debianPackage },
    });
    this.name = 'MissingHostToolError';
    this.tool = tool;
    this.debianPackage = debianPackage;
  }
}

/** The agent bundle that goes into the image has not been built. */
export class AgentBundleMissingError extends KilnError {
  constructor(path: string) {
    super('AGENT_BUNDLE_MISSING', `agent bundle ${path} not found: run \`npm run build\` first`, {
      status: 500,
      details: { path },
    });
    this.name = 'AgentBundleMissingError';
  }
}
