// The storage account behind the Functions host (AzureWebJobsStorage, identity-based), the Flex Consumption
// deployment container and the issuance ledger. The ledger keeps one table per UTC hour (<ledgerTableName><yyyyMMddHH>),
// which the app creates as it writes and its ledgerRetention timer drops past STS_LEDGER_RETENTION_HOURS, so no
// table is declared here (docs/ledger.md, "Retention"). Shared keys are off: every client, the host included,
// authenticates with Microsoft Entra ID, so there is no connection string to leak.

@description('Storage account name: 3-24 lower-case letters and digits, globally unique.')
@minLength(3)
@maxLength(24)
param name string

@description('Azure region.')
param location string

@description('Redundancy of the account.')
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_RAGRS'
  'Standard_GZRS'
  'Standard_RAGZRS'
])
param skuName string = 'Standard_LRS'

@description('Blob container the Flex Consumption plan deploys the app package from.')
param deploymentContainerName string

@description('Base name of the issuance ledger\'s hour tables (STS_LEDGER_TABLE).')
param ledgerTableName string

@description('Tags applied to the account.')
param tags object = {}

resource account 'Microsoft.Storage/storageAccounts@2025-06-01' = {
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: skuName
  }
  properties: {
    accessTier: 'Hot'
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2025-06-01' = {
  parent: account
  name: 'default'
}

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2025-06-01' = {
  parent: blobService
  name: deploymentContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2025-06-01' = {
  parent: account
  name: 'default'
}

@description('Name of the storage account.')
output name string = account.name

@description('Blob endpoint, e.g. https://<account>.blob.core.windows.net/ (with the trailing slash).')
output blobEndpoint string = account.properties.primaryEndpoints.blob

@description('Table endpoint without the trailing slash: the STS_LEDGER_TABLE_URL the app reads.')
output tableEndpoint string = 'https://${account.name}.table.${environment().suffixes.storage}'

@description('Name of the deployment container.')
output deploymentContainerName string = deploymentContainer.name

@description('Base name of the ledger\'s hour tables.')
output ledgerTableName string = ledgerTableName
