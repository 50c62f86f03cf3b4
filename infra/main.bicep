// Secure Token Service on Azure Functions: everything one resource group needs to serve the four flows.
//
//   az deployment group create -g <rg> -f infra/main.bicep -p infra/main.secrets.bicepparam   (first time)
//   az deployment group create -g <rg> -f infra/main.bicep -p infra/main.bicepparam           (afterwards)
//
// `npm run sts -- infra-params` writes main.secrets.bicepparam (git-ignored) with a fresh signing key and,
// optionally, demo credentials. Secrets enter only through @secure() parameters and never leave as outputs.
// `npm run test:infra` compiles and lints this template and checks its security invariants.

targetScope = 'resourceGroup'

import { initialSecretsType } from 'modules/keyVault.bicep'

@description('Short name of this deployment (letters, digits, hyphens); part of every resource name.')
@minLength(2)
@maxLength(20)
param environmentName string = 'sts'

// The regions that offer the Flex Consumption plan, as the official Flex quickstart templates list them
// (https://github.com/Azure-Samples/functions-quickstart-typescript-azd/blob/main/infra/main.bicep). A region
// outside the list fails at validation, before anything is created; extend the list when Flex reaches more.
@description('Region of every resource; it must offer the Flex Consumption plan.')
@allowed([
  'australiaeast'
  'australiasoutheast'
  'brazilsouth'
  'canadacentral'
  'centralindia'
  'centralus'
  'eastasia'
  'eastus'
  'eastus2'
  'francecentral'
  'germanywestcentral'
  'italynorth'
  'japaneast'
  'koreacentral'
  'northcentralus'
  'northeurope'
  'norwayeast'
  'southafricanorth'
  'southcentralus'
  'southeastasia'
  'southindia'
  'spaincentral'
  'swedencentral'
  'uaenorth'
  'uksouth'
  'ukwest'
  'westcentralus'
  'westeurope'
  'westus'
  'westus2'
  'westus3'
])
@metadata({
  azd: {
    type: 'location'
  }
})
// The resource group's region by default; any() defers the check against the list to ARM's validation.
param location string = any(resourceGroup().location)

@description('Suffix that makes global names unique; stable for one subscription, resource group and environment.')
@minLength(4)
@maxLength(13)
param resourceToken string = toLower(uniqueString(subscription().id, resourceGroup().id, environmentName))

@description('Function app name; the app answers on https://<name>.azurewebsites.net/.')
param functionAppName string = toLower('func-${environmentName}-${resourceToken}')

@description('Key Vault name (3-24 characters, globally unique; purge protection keeps a deleted name taken for the retention period).')
@minLength(3)
@maxLength(24)
param keyVaultName string = toLower('kv${take(replace(environmentName, '-', ''), 9)}${resourceToken}')

@description('Storage account name (3-24 lower-case letters and digits, globally unique).')
@minLength(3)
@maxLength(24)
param storageAccountName string = toLower('st${take(replace(environmentName, '-', ''), 9)}${resourceToken}')

@description('STS_ISSUER: iss of every JWT and base of the discovery document; empty for https://<default host name>/. Set it when the app is served under a custom domain.')
param issuer string = ''

@description('STS_AUDIENCE_MIXED_REALITY; empty for <issuer>mixedreality.')
param mixedRealityAudience string = ''

@description('STS_AUDIENCE_COGNITIVE; {region} is replaced by each resource\'s region.')
param cognitiveAudience string = 'urn:ms.cognitiveservices.{region}'

@description('STS_WRAP_ISSUER (the ACS host WRAP clients talk to); empty for the issuer.')
param wrapIssuer string = ''

@description('STS_ENTRA_AUDIENCE: aud of the Microsoft Entra access tokens accepted in place of a Mixed Reality account key or Cognitive key (the STS app registration: client id or App ID URI). Empty turns keyless callers off. See docs/entra-id.md.')
param entraAudience string = ''

@description('STS_ENTRA_AUTHORITY: issuer of those tokens, or several tenants\' issuers comma-separated; empty for this deployment\'s tenant (https://login.microsoftonline.com/<tenant id>/v2.0).')
param entraAuthority string = ''

@description('Web origins (scheme://host[:port]) whose pages may call the STS with fetch; empty: none. Sets both STS_CORS_ALLOWED_ORIGINS and the platform CORS list. See docs/cors.md.')
param corsAllowedOrigins string[] = []

@description('STS_LEDGER_MODE: required returns a token only after its ledger row is committed.')
@allowed([
  'required'
  'best-effort'
  'off'
])
param ledgerMode string = 'required'

@description('STS_LEDGER_TABLE: 3-53 letters and digits, starting with a letter (each hour\'s table adds yyyyMMddHH).')
@minLength(3)
@maxLength(53)
param ledgerTableName string = 'issuance'

@description('STS_LEDGER_RETENTION_HOURS: ledger rows are kept this long, then their hour\'s table is dropped (within the next hour). Default 720 (30 days).')
@minValue(1)
@maxValue(87600)
param ledgerRetentionHours int = 720

@description('STS_LEDGER_CLIENT_ADDRESS: what a ledger row keeps of the client address: full, truncated (IPv4 /24, IPv6 /48) or keyed-hash (needs the secret sts-ledger-address-key).')
@allowed([
  'full'
  'truncated'
  'keyed-hash'
])
param ledgerClientAddress string = 'truncated'

@description('Redundancy of the storage account.')
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_RAGRS'
  'Standard_GZRS'
  'Standard_RAGZRS'
])
param storageSkuName string = 'Standard_LRS'

@description('Most instances the Flex Consumption plan may scale out to.')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 100

@description('Memory of each instance, in MB.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Object id of the operator (user, group or service principal) that runs the admin CLI against the vault; empty for none. `az ad signed-in-user show --query id -o tsv` gives yours.')
param deployerPrincipalId string = ''

@description('Kind of principal deployerPrincipalId is (User, Group or ServicePrincipal); empty lets Azure Resource Manager look it up, which works for a user and a service principal alike.')
@allowed([
  ''
  'User'
  'Group'
  'ServicePrincipal'
])
param deployerPrincipalType string = ''

@description('Private JWK (JSON) of the initial JWT signing key; empty leaves the vault\'s signing key as it is. Written by `npm run sts -- infra-params`.')
@secure()
param signingKeyJwk string = ''

@description('Initial credential records for the vault; empty leaves the vault\'s credentials as they are. Written by `npm run sts -- infra-params --with-demo-credentials`.')
param initialSecrets initialSecretsType = {}

@description('E-mail address the operations alerts notify (docs/operations.md); empty: they fire in the portal only.')
param alertEmail string = ''

@description('Days after which the JWT signing key counts as overdue for rotation (the signing-key age alert).')
@minValue(1)
@maxValue(3650)
param signingKeyRotationDays int = 90

@description('Tags applied to every resource.')
param tags object = {}

var allTags = union(tags, { 'azd-env-name': environmentName })

module identity 'modules/identity.bicep' = {
  name: 'identity'
  params: {
    name: toLower('id-${environmentName}-${resourceToken}')
    location: location
    tags: allTags
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  params: {
    logAnalyticsName: toLower('log-${environmentName}-${resourceToken}')
    appInsightsName: toLower('appi-${environmentName}-${resourceToken}')
    location: location
    tags: allTags
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  params: {
    name: storageAccountName
    location: location
    skuName: storageSkuName
    deploymentContainerName: 'deployment-package'
    ledgerTableName: ledgerTableName
    tags: allTags
  }
}

module keyVault 'modules/keyVault.bicep' = {
  name: 'keyVault'
  params: {
    name: keyVaultName
    location: location
    signingKeyJwk: signingKeyJwk
    initialSecrets: initialSecrets
    tags: allTags
  }
}

module roleAssignments 'modules/roleAssignments.bicep' = {
  name: 'roleAssignments'
  params: {
    appPrincipalId: identity.outputs.principalId
    deployerPrincipalId: deployerPrincipalId
    deployerPrincipalType: deployerPrincipalType
    keyVaultName: keyVault.outputs.name
    storageAccountName: storage.outputs.name
    appInsightsName: monitoring.outputs.appInsightsName
  }
}

module functionApp 'modules/functionApp.bicep' = {
  name: 'functionApp'
  params: {
    name: functionAppName
    planName: toLower('plan-${environmentName}-${resourceToken}')
    location: location
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    storageAccountName: storage.outputs.name
    storageBlobEndpoint: storage.outputs.blobEndpoint
    deploymentContainerName: storage.outputs.deploymentContainerName
    appInsightsName: monitoring.outputs.appInsightsName
    keyVaultUri: keyVault.outputs.uri
    issuer: issuer
    mixedRealityAudience: mixedRealityAudience
    cognitiveAudience: cognitiveAudience
    wrapIssuer: wrapIssuer
    entraAuthority: empty(entraAuthority) ? '${environment().authentication.loginEndpoint}${tenant().tenantId}/v2.0' : entraAuthority
    entraAudience: entraAudience
    corsAllowedOrigins: corsAllowedOrigins
    ledgerMode: ledgerMode
    ledgerTableName: storage.outputs.ledgerTableName
    ledgerTableUrl: storage.outputs.tableEndpoint
    ledgerRetentionHours: ledgerRetentionHours
    ledgerClientAddress: ledgerClientAddress
    maximumInstanceCount: maximumInstanceCount
    instanceMemoryMB: instanceMemoryMB
    tags: allTags
  }
  // The host starts as soon as the app exists: its identity must already reach storage and the vault.
  dependsOn: [
    roleAssignments
  ]
}

// The workbook, alert rules, availability test of GET /health and resource logs (docs/operations.md).
module operations 'modules/operations.bicep' = {
  name: 'operations'
  params: {
    location: location
    logAnalyticsName: monitoring.outputs.logAnalyticsName
    appInsightsName: monitoring.outputs.appInsightsName
    keyVaultName: keyVault.outputs.name
    storageAccountName: storage.outputs.name
    functionAppHostName: functionApp.outputs.defaultHostName
    signingKeyRotationDays: signingKeyRotationDays
    alertEmail: alertEmail
    tags: allTags
  }
}

var baseUrl = 'https://${functionApp.outputs.defaultHostName}/'

// Output names are the environment variables the admin CLI reads, so after `azd up` (or with the values
// copied from `az deployment group show`) `npm run sts -- ...` talks to this vault and ledger.

@description('Name of the function app (`func azure functionapp publish <name>`).')
output FUNCTION_APP_NAME string = functionApp.outputs.name

@description('Default host name of the function app.')
output FUNCTION_APP_HOST_NAME string = functionApp.outputs.defaultHostName

@description('STS_ISSUER the app was configured with.')
output STS_ISSUER string = functionApp.outputs.issuer

@description('Vault URI: the KEY_VAULT_URL of the app and of the admin CLI.')
output KEY_VAULT_URL string = keyVault.outputs.uri

@description('Client id of the app\'s managed identity (its AZURE_CLIENT_ID in Azure).')
output APP_IDENTITY_CLIENT_ID string = identity.outputs.clientId

@description('Ledger table endpoint, for `npm run sts -- audit`.')
output STS_LEDGER_TABLE_URL string = storage.outputs.tableEndpoint

@description('Ledger table name.')
output STS_LEDGER_TABLE string = storage.outputs.ledgerTableName

@description('Mixed Reality STS: GET with Authorization: Bearer <accountId>:<accountKey>.')
output MIXED_REALITY_STS_URL string = '${baseUrl}accounts/{accountId}/token'

@description('Cognitive Services issueToken: POST with Ocp-Apim-Subscription-Key.')
output COGNITIVE_ISSUE_TOKEN_URL string = '${baseUrl}sts/v1.0/issueToken'

@description('Cognitive Services issueLimitedAccessToken: POST ?expiredTime=<seconds>.')
output COGNITIVE_LIMITED_ACCESS_URL string = '${baseUrl}sts/v1.0/issueLimitedAccessToken'

@description('ACS OAuth WRAP v0.9: POST form wrap_name, wrap_password, wrap_scope.')
output WRAP_URL string = '${baseUrl}WRAPv0.9/'

@description('OpenID discovery document (points at the JWKS).')
output OPENID_CONFIGURATION_URL string = '${baseUrl}.well-known/openid-configuration'

@description('Health endpoint: 200 when the vault, the signing key and the ledger answer (docs/operations.md).')
output HEALTH_URL string = '${baseUrl}health'

@description('Resource id of the operations workbook (Azure portal: Monitor, Workbooks).')
output OPERATIONS_WORKBOOK_ID string = operations.outputs.workbookId

@description('JSON Web Key Set that verifies every JWT the STS signs.')
output JWKS_URL string = '${baseUrl}.well-known/jwks.json'
