// The function app's user-assigned managed identity. One identity for everything the app touches (host
// storage, deployment container, ledger table, Key Vault, Application Insights), so its client id is the
// single value behind AZURE_CLIENT_ID, AzureWebJobsStorage__clientId and the App Insights auth string.

@description('Name of the user-assigned managed identity.')
param name string

@description('Azure region.')
param location string

@description('Tags applied to the identity.')
param tags object = {}

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2024-11-30' = {
  name: name
  location: location
  tags: tags
}

@description('ARM resource id of the identity (for the app\'s identity block and deployment storage auth).')
output id string = identity.id

@description('Object (principal) id of the identity, for role assignments.')
output principalId string = identity.properties.principalId

@description('Client (application) id of the identity, for AZURE_CLIENT_ID and friends.')
output clientId string = identity.properties.clientId

@description('Name of the identity.')
output name string = identity.name
