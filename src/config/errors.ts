import { SidecarError } from "../shared/errors.js";

/** A configuration problem, always tied to the key path it was found at. Never carries values. */
export class ConfigError extends SidecarError {
  constructor(
    readonly keyPath: string,
    readonly problem: string,
  ) {
    super("CONFIG_INVALID", keyPath ? `${keyPath}: ${problem}` : problem);
  }
}

/** Several problems reported at once, so a user fixes a file in one pass. */
export class ConfigErrors extends SidecarError {
  constructor(readonly errors: ConfigError[]) {
    super("CONFIG_INVALID", `invalid configuration:\n${errors.map((e) => `  - ${e.message}`).join("\n")}`);
  }
}

/**
 * A configuration that works but that an operator should hear about at start-up (`run` logs it at
 * warn, `check-config` prints it). Like ConfigError, tied to a key path and never carrying a value.
 */
export class ConfigWarning {
  constructor(
    readonly keyPath: string,
    readonly problem: string,
  ) {}

  get message(): string {
    return this.keyPath ? `${this.keyPath}: ${this.problem}` : this.problem;
  }
}
