// The Flex Consumption plan (FC1, Linux) and the function app: Node 22, HTTPS only, TLS 1.2, no FTP(S),
// no basic-auth publishing, HTTP/2. The app runs as the user-assigned identity and reaches everything with
// it: host storage (AzureWebJobsStorage__*), the deployment container, Key Vault, the ledger table and
// Application Insights. The app settings are exactly the ones shared/config.ts reads.

@description('Name of the function app (the host name is <name>.azurewebsites.net).')
param name string

@description('Name of the Flex Consumption plan.')
param planName string

@description('Azure region (one that offers Flex Consumption).')
param location string

@description('Resource id of the app\'s user-assigned identity.')
param identityId string

@description('Client id of the app\'s user-assigned identity.')
param identityClientId string

@description('Name of the host storage account.')
param storageAccountName string

@description('Blob endpoint of the host storage account (with the trailing slash).')
param storageBlobEndpoint string

@description('Container the Flex Consumption plan deploys the app package from.')
param deploymentContainerName string

@description('Name of the Application Insights component.')
param appInsightsName string

@description('Vault URI (KEY_VAULT_URL).')
param keyVaultUri string

@description('STS_ISSUER; empty for https://<default host name>/.')
param issuer string = ''

@description('STS_AUDIENCE_MIXED_REALITY; empty for <issuer>mixedreality.')
param mixedRealityAudience string = ''

@description('STS_AUDIENCE_COGNITIVE ({region} is replaced by the resource\'s region).')
param cognitiveAudience string = 'urn:ms.cognitiveservices.{region}'

@description('STS_WRAP_ISSUER; empty for the issuer.')
param wrapIssuer string = ''

@description('STS_ENTRA_AUTHORITY: issuer(s), comma-separated, of the Entra tokens accepted for keyless callers (docs/entra-id.md).')
param entraAuthority string

@description('STS_ENTRA_AUDIENCE: their aud; empty turns keyless callers off (both settings are then empty).')
param entraAudience string = ''

@description('Web origins whose pages may call the STS (docs/cors.md): STS_CORS_ALLOWED_ORIGINS and the platform CORS list, the same list. Empty: none.')
param corsAllowedOrigins array = []

@description('STS_LEDGER_MODE: required (no token without its ledger row), best-effort, or off.')
@allowed([
  'required'
  'best-effort'
  'off'
])
param ledgerMode string = 'required'

@description('STS_LEDGER_TABLE.')
param ledgerTableName string

@description('STS_LEDGER_TABLE_URL: https://<account>.table.core.windows.net.')
param ledgerTableUrl string

@description('STS_LEDGER_RETENTION_HOURS.')
@minValue(1)
@maxValue(87600)
param ledgerRetentionHours int = 720

@description('STS_LEDGER_CLIENT_ADDRESS.')
@allowed([
  'full'
  'truncated'
  'keyed-hash'
])
param ledgerClientAddress string = 'truncated'

@description('Most instances the plan may scale out to.')
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

@description('Tags applied to the plan and the app.')
param tags object = {}

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

resource plan 'Microsoft.Web/serverfarms@2025-03-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    tier: 'FlexConsumption'
    name: 'FC1'
  }
  properties: {
    reserved: true
  }
}

resource site 'Microsoft.Web/sites@2025-03-01' = {
  name: name
  location: location
  // azd finds the app to deploy to by this tag (azure.yaml service `api`).
  tags: union(tags, { 'azd-service-name': 'api' })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    clientCertEnabled: false
    publicNetworkAccess: 'Enabled'
    keyVaultReferenceIdentity: identityId
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      // On Flex Consumption the Functions host answers every CORS preflight itself from this list, before any
      // function runs; the app answers everything else from STS_CORS_ALLOWED_ORIGINS, the same list
      // (docs/cors.md). Never with credentials: no flow uses cookies.
      cors: {
        allowedOrigins: corsAllowedOrigins
        supportCredentials: false
      }
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storageBlobEndpoint}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'node'
        version: '22'
      }
    }
  }
}

// Publishing uses Microsoft Entra ID (func / azd / az), never the site's FTP or SCM basic credentials.
resource ftpBasicAuth 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2025-03-01' = {
  parent: site
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmBasicAuth 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2025-03-01' = {
  parent: site
  name: 'scm'
  properties: {
    allow: false
  }
}

var stsIssuer = empty(issuer) ? 'https://${site.properties.defaultHostName}/' : issuer

// Flex Consumption takes the runtime from functionAppConfig: no FUNCTIONS_WORKER_RUNTIME,
// FUNCTIONS_EXTENSION_VERSION or WEBSITE_RUN_FROM_PACKAGE here. No plain AzureWebJobsStorage and no
// STS_LEDGER_CONNECTION_STRING either: storage is reached with the identity only.
resource appSettings 'Microsoft.Web/sites/config@2025-03-01' = {
  parent: site
  name: 'appsettings'
  properties: {
    AzureWebJobsStorage__accountName: storageAccountName
    AzureWebJobsStorage__credential: 'managedidentity'
    AzureWebJobsStorage__clientId: identityClientId
    // The host's own page at `/` tells an anonymous caller which platform answers; no client of the STS needs it.
    AzureWebJobsDisableHomepage: 'true'
    // No languageWorkers__node__arguments: with worker arguments set the host does not reuse its pre-started
    // placeholder worker and every cold start pays a new Node process (docs/deploy.md, "The placeholder worker").
    // The app gives the worker's HTTP proxy its header room itself (shared/http/workerProxyHeaderLimit.ts).
    APPLICATIONINSIGHTS_CONNECTION_STRING: appInsights.properties.ConnectionString
    APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'Authorization=AAD;ClientId=${identityClientId}'
    AZURE_CLIENT_ID: identityClientId
    KEY_VAULT_URL: keyVaultUri
    STS_ISSUER: stsIssuer
    STS_AUDIENCE_MIXED_REALITY: empty(mixedRealityAudience) ? '${stsIssuer}mixedreality' : mixedRealityAudience
    STS_AUDIENCE_COGNITIVE: cognitiveAudience
    STS_WRAP_ISSUER: empty(wrapIssuer) ? stsIssuer : wrapIssuer
    STS_ENTRA_AUTHORITY: empty(entraAudience) ? '' : entraAuthority
    STS_ENTRA_AUDIENCE: entraAudience
    STS_CORS_ALLOWED_ORIGINS: join(corsAllowedOrigins, ',')
    STS_LEDGER_MODE: ledgerMode
    STS_LEDGER_TABLE: ledgerTableName
    STS_LEDGER_TABLE_URL: ledgerTableUrl
    STS_LEDGER_RETENTION_HOURS: string(ledgerRetentionHours)
    STS_LEDGER_CLIENT_ADDRESS: ledgerClientAddress
  }
}

@description('Name of the function app.')
output name string = site.name

@description('Default host name, e.g. <name>.azurewebsites.net.')
output defaultHostName string = site.properties.defaultHostName

@description('The issuer the app was configured with (STS_ISSUER).')
output issuer string = stsIssuer
