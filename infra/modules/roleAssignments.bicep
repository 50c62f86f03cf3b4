// Every role assignment of the deployment, each on the narrowest scope that works. Role definition ids are
// literals (checked against the Azure built-in roles reference) so tooling/infra/testInfra.ts can assert that the
// compiled template grants nothing else:
//
// | role                            | id                                   | to        | scope               |
// |---------------------------------|--------------------------------------|-----------|---------------------|
// | Key Vault Secrets User          | 4633458b-17de-408a-b874-0445c86b69e6 | app       | the vault           |
// | Storage Blob Data Owner         | b7e6dc6d-f1e8-4753-8033-0f276bb0955b | app       | the storage account |
// | Storage Table Data Contributor  | 0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3 | app       | the storage account |
// | Monitoring Metrics Publisher    | 3913510d-42f4-4e42-8a64-420c390055eb | app       | Application Insights|
// | Key Vault Secrets Officer       | b86a8fe4-44ce-4948-aee5-eccb2c155cd7 | deployer  | the vault           |
// | Storage Table Data Reader       | 76199698-9eea-4c19-bc75-cec21354c6b6 | deployer  | the ledger table    |
//
// Blob Data Owner covers the Functions host (keys, leases) and the Flex Consumption deployment container.
// Table Data Contributor is on the account, not only the ledger table, because the host also writes its
// diagnostic-events tables there. No queue role: the app has HTTP triggers only, and the host needs queues
// only for blob triggers. The deployer (optional) gets Secrets Officer so the admin CLI can create and rotate
// credentials against KEY_VAULT_URL, and read access to the ledger for `npm run sts -- audit`.

@description('Object id of the app\'s managed identity.')
param appPrincipalId string

@description('Object id of a user, group or service principal that administers credentials; empty for none.')
param deployerPrincipalId string = ''

@description('Kind of principal deployerPrincipalId is; empty: not sent, Azure Resource Manager looks the principal up.')
@allowed([
  ''
  'User'
  'Group'
  'ServicePrincipal'
])
param deployerPrincipalType string = ''

@description('Name of the Key Vault.')
param keyVaultName string

@description('Name of the storage account.')
param storageAccountName string

@description('Name of the Application Insights component.')
param appInsightsName string

// A role assignment whose principalType does not match its principal is refused, and azd cannot say which kind
// it is logged in as in bicepparam mode. principalType is optional: without it ARM reads the principal from
// Microsoft Entra ID, which works for a user and a service principal alike (it only matters for a principal
// created moments before, which the deployer never is).
var deployerPrincipalTypeOrNone = empty(deployerPrincipalType) ? null : deployerPrincipalType

resource vault 'Microsoft.KeyVault/vaults@2024-11-01' existing = {
  name: keyVaultName
}

resource storage 'Microsoft.Storage/storageAccounts@2025-06-01' existing = {
  name: storageAccountName

}

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

resource appSecretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, appPrincipalId, '4633458b-17de-408a-b874-0445c86b69e6')
  scope: vault
  properties: {
    description: 'STS function app reads keys and credential records.'
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '4633458b-17de-408a-b874-0445c86b69e6')
  }
}

resource appBlobDataOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, appPrincipalId, 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b')
  scope: storage
  properties: {
    description: 'Functions host storage and the Flex Consumption deployment container.'
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b')
  }
}

resource appTableDataContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, appPrincipalId, '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3')
  scope: storage
  properties: {
    description: 'Issuance ledger rows and Functions host diagnostic events.'
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3')
  }
}

resource appMetricsPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appInsights.id, appPrincipalId, '3913510d-42f4-4e42-8a64-420c390055eb')
  scope: appInsights
  properties: {
    description: 'Entra ID-authenticated telemetry (local auth is disabled).'
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '3913510d-42f4-4e42-8a64-420c390055eb')
  }
}

resource deployerSecretsOfficer 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(deployerPrincipalId)) {
  name: guid(vault.id, deployerPrincipalId, 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7')
  scope: vault
  properties: {
    description: 'Operator: the admin CLI creates and rotates credentials.'
    principalId: deployerPrincipalId
    principalType: deployerPrincipalTypeOrNone
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7')
  }
}

// On the account: the ledger is one table per hour, created and dropped as time passes, so no single table
// could carry the assignment (the account holds only this app's host storage and ledger).
resource deployerLedgerReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(deployerPrincipalId)) {
  name: guid(storage.id, deployerPrincipalId, '76199698-9eea-4c19-bc75-cec21354c6b6')
  scope: storage
  properties: {
    description: 'Operator: `npm run sts -- audit` reads the issuance ledger\'s hour tables.'
    principalId: deployerPrincipalId
    principalType: deployerPrincipalTypeOrNone
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '76199698-9eea-4c19-bc75-cec21354c6b6')
  }
}
