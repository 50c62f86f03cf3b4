// What an operator watches (docs/operations.md): an Azure Monitor workbook, log alert rules, an availability
// test of GET /health, and the Key Vault and storage resource logs in the Log Analytics workspace.
//
// Every query reads the app's own telemetry records: one trace per request whose message is
// `sts.request {json}` and one per health evaluation, `sts.health {json}` (shared/telemetry/requestTelemetry.ts,
// shared/health/healthProbe.ts). `npm run test:infra` checks that each query names only fields those modules
// declare, with the prefix lengths they write.

@description('Azure region of the alert rules and the workbook.')
param location string

@description('Name of the Log Analytics workspace (the app\'s telemetry, Key Vault and storage logs).')
param logAnalyticsName string

@description('Name of the Application Insights component.')
param appInsightsName string

@description('Name of the Key Vault whose AuditEvent log goes to the workspace.')
param keyVaultName string

@description('Name of the storage account whose blob and table logs go to the workspace.')
param storageAccountName string

@description('Default host name of the function app (the availability test calls https://<host>/health).')
param functionAppHostName string

@description('Days after which the signing key counts as overdue for rotation (alert "signing key age").')
@minValue(1)
@maxValue(3650)
param signingKeyRotationDays int = 90

@description('E-mail address the alerts notify; empty: the alerts fire in the portal only.')
param alertEmail string = ''

@description('Tags applied to every resource.')
param tags object = {}

resource workspace 'Microsoft.OperationalInsights/workspaces@2025-07-01' existing = {
  name: logAnalyticsName
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

resource vault 'Microsoft.KeyVault/vaults@2024-11-01' existing = {
  name: keyVaultName
}

resource storage 'Microsoft.Storage/storageAccounts@2025-06-01' existing = {
  name: storageAccountName

  resource blobService 'blobServices' existing = {
    name: 'default'
  }

  resource tableService 'tableServices' existing = {
    name: 'default'
  }
}

// ---------------------------------------------------------------------------------------------------------
// Resource logs to the workspace

resource vaultDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: vault
  properties: {
    workspaceId: workspace.id
    logs: [
      {
        category: 'AuditEvent'
        enabled: true
      }
    ]
    metrics: [
      {
        category: 'AllMetrics'
        enabled: true
      }
    ]
  }
}

resource tableDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: storage::tableService
  properties: {
    workspaceId: workspace.id
    logs: [
      {
        category: 'StorageRead'
        enabled: true
      }
      {
        category: 'StorageWrite'
        enabled: true
      }
      {
        category: 'StorageDelete'
        enabled: true
      }
    ]
    metrics: [
      {
        category: 'Transaction'
        enabled: true
      }
    ]
  }
}

resource blobDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: storage::blobService
  properties: {
    workspaceId: workspace.id
    logs: [
      {
        category: 'StorageWrite'
        enabled: true
      }
      {
        category: 'StorageDelete'
        enabled: true
      }
    ]
    metrics: [
      {
        category: 'Transaction'
        enabled: true
      }
    ]
  }
}

// ---------------------------------------------------------------------------------------------------------
// The queries (workspace-based Application Insights: the app's traces are in AppTraces)

var requestRecords = 'AppTraces\n| where Message startswith "sts.request "\n| extend r = parse_json(substring(Message, 12))\n'
var healthRecords = 'AppTraces\n| where Message startswith "sts.health "\n| extend h = parse_json(substring(Message, 11))\n'

var queries = {
  tokensPerMinute: '${requestRecords}| where tostring(r.outcome) == "issued"\n| summarize tokens = count() by flow = tostring(r.flow), bin(TimeGenerated, 1m)\n| render timechart'
  outcomes: '${requestRecords}| summarize requests = count() by outcome = tostring(r.outcome), flow = tostring(r.flow)\n| order by requests desc'
  refusalsByReason: '${requestRecords}| where tostring(r.outcome) in ("refused", "limited")\n| summarize refusals = count() by reason = tostring(r.reason), flow = tostring(r.flow)\n| order by refusals desc'
  limitedAndUnavailableRates: '${requestRecords}| summarize total = count(), limited = countif(toint(r.status) == 429), unavailable = countif(toint(r.status) == 503) by bin(TimeGenerated, 5m)\n| extend limitedPercent = 100.0 * limited / total, unavailablePercent = 100.0 * unavailable / total\n| project TimeGenerated, limitedPercent, unavailablePercent\n| render timechart'
  duration: '${requestRecords}| summarize p50 = percentile(todouble(r.durationMs), 50), p99 = percentile(todouble(r.durationMs), 99) by flow = tostring(r.flow), bin(TimeGenerated, 5m)\n| render timechart'
  unavailableByDependency: '${requestRecords}| where tostring(r.outcome) == "unavailable"\n| summarize requests = count() by reason = tostring(r.reason), bin(TimeGenerated, 5m)\n| render timechart'
  vaultThrottling: 'AzureDiagnostics\n| where ResourceProvider == "MICROSOFT.KEYVAULT" and Category == "AuditEvent"\n| summarize vaultRequests = count(), throttled = countif(httpStatusCode_d == 429), failed = countif(httpStatusCode_d >= 500) by bin(TimeGenerated, 5m)\n| render timechart'
  entraOutcomes: '${requestRecords}| where isnotempty(tostring(r.principal))\n| summarize requests = count() by outcome = tostring(r.outcome), reason = tostring(r.reason), bin(TimeGenerated, 15m)\n| render columnchart'
  ledgerTable: 'StorageTableLogs\n| summarize operations = count(), failed = countif(toint(StatusCode) >= 400) by OperationName, bin(TimeGenerated, 5m)\n| render timechart'
  topClients: '${requestRecords}| where tostring(r.outcome) in ("refused", "limited")\n| summarize refusals = count() by clientIp = tostring(r.clientIp)\n| top 20 by refusals'
  health: '${healthRecords}| summarize arg_max(TimeGenerated, *) by instance = tostring(h.instance)\n| project TimeGenerated, instance, status = tostring(h.status), vault = tostring(h.vault), signingKey = tostring(h.signingKey), signingKeyAgeDays = toint(h.signingKeyAgeSeconds) / 86400, ledger = tostring(h.ledger), entraAuthority = tostring(h.entraAuthority)'
}

var workbookTiles = [
  {
    title: 'Tokens per minute, by flow'
    query: queries.tokensPerMinute
  }
  {
    title: 'Requests by outcome and flow'
    query: queries.outcomes
  }
  {
    title: 'Refusals (4xx and 429) by reason'
    query: queries.refusalsByReason
  }
  {
    title: '429 and 503 rates (% of requests)'
    query: queries.limitedAndUnavailableRates
  }
  {
    title: 'Duration p50 and p99 (ms), by flow'
    query: queries.duration
  }
  {
    title: '503s by dependency (secret-store:throttled is Key Vault throttling)'
    query: queries.unavailableByDependency
  }
  {
    title: 'Key Vault: requests, throttled (429) and failed (AuditEvent)'
    query: queries.vaultThrottling
  }
  {
    title: 'Microsoft Entra callers: outcomes and reasons'
    query: queries.entraOutcomes
  }
  {
    title: 'Ledger table operations and failures (storage logs)'
    query: queries.ledgerTable
  }
  {
    title: 'Client addresses with the most refusals'
    query: queries.topClients
  }
  {
    title: 'Health, last evaluation per instance'
    query: queries.health
  }
]

var workbookItems = [
  for (tile, i) in workbookTiles: {
    type: 3
    name: 'tile-${i}'
    content: {
      version: 'KqlItem/1.0'
      title: tile.title
      query: tile.query
      size: 0
      timeContext: {
        durationMs: 86400000
      }
      queryType: 0
      resourceType: 'microsoft.operationalinsights/workspaces'
    }
  }
]

var workbookContent = {
  version: 'Notebook/1.0'
  items: workbookItems
  fallbackResourceIds: [
    workspace.id
  ]
}

resource workbook 'Microsoft.Insights/workbooks@2023-06-01' = {
  name: guid(resourceGroup().id, workspace.id, 'sts-operations-workbook')
  location: location
  tags: tags
  kind: 'shared'
  properties: {
    displayName: 'Secure Token Service: operations'
    category: 'workbook'
    sourceId: workspace.id
    serializedData: string(workbookContent)
  }
}

// ---------------------------------------------------------------------------------------------------------
// Availability: GET /health from five test locations every five minutes (also what keeps the health records,
// and so the signing-key age alert, flowing when no one else asks).

resource healthTest 'Microsoft.Insights/webtests@2022-06-15' = {
  name: 'health-${appInsightsName}'
  location: location
  tags: union(tags, {
    'hidden-link:${appInsights.id}': 'Resource'
  })
  kind: 'standard'
  properties: {
    SyntheticMonitorId: 'health-${appInsightsName}'
    Name: 'GET /health'
    Enabled: true
    Frequency: 300
    Timeout: 30
    Kind: 'standard'
    RetryEnabled: true
    Locations: [
      {
        Id: 'us-va-ash-azr'
      }
      {
        Id: 'us-ca-sjc-azr'
      }
      {
        Id: 'emea-nl-ams-azr'
      }
      {
        Id: 'emea-gb-db3-azr'
      }
      {
        Id: 'apac-sg-sin-azr'
      }
    ]
    Request: {
      RequestUrl: 'https://${functionAppHostName}/health'
      HttpVerb: 'GET'
      ParseDependentRequests: false
    }
    ValidationRules: {
      ExpectedHttpStatusCode: 200
      SSLCheck: true
      SSLCertRemainingLifetimeCheck: 7
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// Alerts

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = if (!empty(alertEmail)) {
  name: 'ag-sts-operations'
  location: 'Global'
  tags: tags
  properties: {
    groupShortName: 'sts-ops'
    enabled: true
    emailReceivers: [
      {
        name: 'operator'
        emailAddress: alertEmail
        useCommonAlertSchema: true
      }
    ]
  }
}

var alertActions = empty(alertEmail) ? {} : { actionGroups: [actionGroup.id] }

var alertRules = [
  {
    name: 'sts-503-rate'
    severity: 1
    description: '503 (unavailable) above 5% of requests over 5 minutes: a dependency (vault, ledger, upstream, Entra authority) cannot answer, or a new deployment\'s roles are still propagating. docs/operations.md'
    frequency: 'PT5M'
    window: 'PT5M'
    query: '${requestRecords}| summarize total = count(), unavailable = countif(toint(r.status) == 503)\n| where total >= 20\n| extend unavailablePercent = 100.0 * unavailable / total'
    aggregation: 'Maximum'
    measure: 'unavailablePercent'
    threshold: 5
  }
  {
    name: 'sts-5xx'
    severity: 1
    description: 'A request ended in a 500 (a defect: the app never answers a client mistake with a 5xx). docs/operations.md'
    frequency: 'PT5M'
    window: 'PT5M'
    query: '${requestRecords}| where tostring(r.outcome) == "failed"'
    aggregation: 'Count'
    measure: ''
    threshold: 0
  }
  {
    name: 'sts-vault-throttling'
    severity: 2
    description: 'Key Vault throttled the app (429): requests answered 503 until the vault recovers. docs/operations.md'
    frequency: 'PT5M'
    window: 'PT5M'
    query: '${requestRecords}| where tostring(r.reason) == "secret-store:throttled"'
    aggregation: 'Count'
    measure: ''
    threshold: 0
  }
  {
    name: 'sts-ledger-failures'
    severity: 1
    description: 'The ledger table could not commit a row: in required mode no token leaves, requests answer 503. docs/operations.md'
    frequency: 'PT5M'
    window: 'PT5M'
    query: '${requestRecords}| where tostring(r.reason) == "ledger"'
    aggregation: 'Count'
    measure: ''
    threshold: 0
  }
  {
    name: 'sts-signing-key-age'
    severity: 3
    description: 'The current JWT signing key is older than the rotation period: rotate it (npm run sts -- rotate-signing-key). docs/operations.md'
    frequency: 'PT1H'
    window: 'PT6H'
    query: '${healthRecords}| where isnotnull(h.signingKeyAgeSeconds)\n| summarize signingKeyAgeSeconds = max(toint(h.signingKeyAgeSeconds))'
    aggregation: 'Maximum'
    measure: 'signingKeyAgeSeconds'
    threshold: signingKeyRotationDays * 86400
  }
]

resource alerts 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = [
  for rule in alertRules: {
    name: rule.name
    location: location
    tags: tags
    kind: 'LogAlert'
    properties: {
      displayName: rule.name
      description: rule.description
      severity: rule.severity
      enabled: true
      evaluationFrequency: rule.frequency
      windowSize: rule.window
      scopes: [
        workspace.id
      ]
      criteria: {
        allOf: [
          {
            query: rule.query
            timeAggregation: rule.aggregation
            metricMeasureColumn: empty(rule.measure) ? null : rule.measure
            operator: 'GreaterThan'
            threshold: rule.threshold
            failingPeriods: {
              numberOfEvaluationPeriods: 1
              minFailingPeriodsToAlert: 1
            }
          }
        ]
      }
      autoMitigate: true
      actions: alertActions
    }
  }
]

@description('Resource id of the operations workbook.')
output workbookId string = workbook.id
