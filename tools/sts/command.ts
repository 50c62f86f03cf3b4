import { StsBaseError } from '../../shared/errors.js';
/**
 * One admin CLI command. Each lives in its own file under `tools/sts/commands/` and is found by name;
 * adding a command is adding a file.
 */
export interface StsCommand {
  /** The word after `npm run sts --`, e.g. `create-account`. */
  readonly name: string;
  /** One line for `--help`. */
  readonly summary: string;
  /** Full usage text for `npm run sts -- <name> --help`. */
  readonly usage: string;
  /** Runs the command; resolves to the process exit code. Writes results to stdout, problems to stderr. */
  run(args: readonly string[]): Promise<number>;
}

/** Thrown for bad command-line input: printed as one line with the command's usage, exit code 2. */
export class UsageError extends StsBaseError {
  readonly code = 'ERR_STS_USAGE';
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}
