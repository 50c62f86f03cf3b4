// Committed parameters: no secrets here. `npm run sts -- infra-params` writes main.secrets.bicepparam
// (git-ignored), which extends this file and adds the @secure() values (signing key, initial credentials).
//
// Values come from the environment where one is set, so the same file serves `az deployment` and `azd`
// (azd sets AZURE_ENV_NAME and AZURE_PRINCIPAL_ID itself).
using './main.bicep'

param environmentName = readEnvironmentVariable('AZURE_ENV_NAME', 'sts')

// Empty: https://<app>.azurewebsites.net/. Set a custom domain here once the app is served under one.
param issuer = readEnvironmentVariable('STS_ISSUER', '')

// Keyless Mixed Reality callers (docs/entra-id.md): the STS app registration's client id or App ID URI.
// Empty: off. The authority defaults to this deployment's tenant.
param entraAudience = readEnvironmentVariable('STS_ENTRA_AUDIENCE', '')

// Web origins whose pages may call the STS (docs/cors.md), comma-separated in STS_CORS_ALLOWED_ORIGINS.
// Empty: no page may.
param corsAllowedOrigins = filter(split(readEnvironmentVariable('STS_CORS_ALLOWED_ORIGINS', ''), ','), origin => !empty(trim(origin)))

param ledgerMode = 'required'
param ledgerTableName = 'issuance'
// 30 days; rows of an hour go together, within the hour after the last of them passes the period (docs/ledger.md).
param ledgerRetentionHours = 720
// full | truncated (IPv4 /24, IPv6 /48) | keyed-hash (run `npm run sts -- create-address-key` first).
param ledgerClientAddress = 'truncated'

// The operator who runs the admin CLI against the vault gets Key Vault Secrets Officer (and ledger read).
// In bicepparam mode azd supplies AZURE_PRINCIPAL_ID (the signed-in user or service principal) but never
// AZURE_PRINCIPAL_TYPE, so the type is left empty by default: the role assignments then carry no principalType
// and Azure Resource Manager looks the principal up, which works for a user and for a pipeline's service
// principal alike (docs/deploy.md). Set AZURE_PRINCIPAL_TYPE only to force one.
param deployerPrincipalId = readEnvironmentVariable('AZURE_PRINCIPAL_ID', '')
param deployerPrincipalType = readEnvironmentVariable('AZURE_PRINCIPAL_TYPE', '')

// Only azd's preprovision hook sets this (once per azd environment); plain `az deployment` users pass the
// key through main.secrets.bicepparam instead.
param signingKeyJwk = readEnvironmentVariable('STS_SIGNING_KEY_JWK', '')

// Where the operations alerts go (docs/operations.md); empty: they fire in the portal only.
param alertEmail = readEnvironmentVariable('STS_ALERT_EMAIL', '')
