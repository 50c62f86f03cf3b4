/** Operator input that provisioning refuses (the admin CLI shows it as a usage error, exit 2). */
export class ProvisioningError extends Error {
  readonly code = 'ERR_STS_PROVISIONING';
  constructor(message: string) {
    super(message);
    this.name = 'ProvisioningError';
  }
}
