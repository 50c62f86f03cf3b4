// The Key Vault that holds every key the STS uses (see shared/credentials/vaultLayout.ts): the JWT signing
// key `sts-signing-key` and the credential records. RBAC mode only (no access policies), soft delete with
// purge protection, and no access for VM deployment, disk encryption or template `reference()`.
//
// Secrets come in only through @secure() parameters (written by `npm run sts -- infra-params` into a
// git-ignored parameters file) and are never echoed in outputs. Each deployment that passes them writes a
// new secret version; deployments that leave them empty leave the vault's secrets untouched.

@export()
@description('One Key Vault secret, as the admin CLI lays it out (shared/credentials/provisioning.ts).')
type vaultSecret = {
  @description('Secret name: 1-127 characters of 0-9 a-z A-Z and hyphens.')
  @minLength(1)
  @maxLength(127)
  name: string

  @description('Secret value (a JSON credential record).')
  value: string

  @description('Content type, e.g. application/json.')
  contentType: string?

  @description('Tags, e.g. { kind: "mixedRealityAccount" }.')
  tags: object?
}

@export()
@secure()
@description('Initial credential records, written in order (index entries before the records they point to).')
type initialSecretsType = {
  secrets: vaultSecret[]?
}

@description('Vault name: 3-24 letters, digits and hyphens, starting with a letter; globally unique.')
@minLength(3)
@maxLength(24)
param name string

@description('Azure region.')
param location string

@description('Days a deleted vault or secret stays recoverable.')
@minValue(7)
@maxValue(90)
param softDeleteRetentionInDays int = 90

@description('Private JWK (JSON) for the `sts-signing-key` secret; empty leaves the signing key as it is.')
@secure()
param signingKeyJwk string = ''

@description('Credential records to create; empty leaves the vault\'s credentials as they are.')
param initialSecrets initialSecretsType = {}

@description('Tags applied to the vault.')
param tags object = {}

resource vault 'Microsoft.KeyVault/vaults@2024-11-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: softDeleteRetentionInDays
    enablePurgeProtection: true
    enabledForDeployment: false
    enabledForDiskEncryption: false
    enabledForTemplateDeployment: false
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
  }
}

// The name is vaultLayout.signingKey; tooling/infra/testInfra.ts checks the two agree.
resource signingKey 'Microsoft.KeyVault/vaults/secrets@2024-11-01' = if (!empty(signingKeyJwk)) {
  parent: vault
  name: 'sts-signing-key'
  properties: {
    value: signingKeyJwk
    contentType: 'application/jwk+json'
    attributes: {
      enabled: true
    }
  }
}

// One at a time, in the order given, which is the order provisioning.ts writes them: index entries and
// namespace keys first, the record that makes a credential usable last. A deployment that fails part-way
// therefore never leaves a usable credential half-written.
@batchSize(1)
resource credentialSecrets 'Microsoft.KeyVault/vaults/secrets@2024-11-01' = [
  for secret in initialSecrets.?secrets ?? []: {
    parent: vault
    name: secret.name
    tags: secret.?tags
    properties: {
      value: secret.value
      contentType: secret.?contentType
      attributes: {
        enabled: true
      }
    }
  }
]

@description('Name of the vault.')
output name string = vault.name

@description('Vault URI, e.g. https://<name>.vault.azure.net/ (KEY_VAULT_URL).')
output uri string = vault.properties.vaultUri
