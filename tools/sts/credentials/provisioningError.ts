import { StsBaseError } from '../../../shared/errors.js';
/** Operator input that provisioning refuses (the admin CLI shows it as a usage error, exit 2). */
export class ProvisioningError extends StsBaseError {
  readonly code = 'ERR_STS_PROVISIONING';
  constructor(message: string) {
    super(message);
    this.name = 'ProvisioningError';
  }
}
