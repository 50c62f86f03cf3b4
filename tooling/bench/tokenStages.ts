/**
 * Where the CPU time of one token goes, by stage (docs/performance.md#where-the-time-goes), for every token flow:
 * a V8 CPU profile of the handler called in process, each sample given to the deepest frame on its stack that
 * belongs to a stage (so a digest inside the credential check counts as key comparison, the signature inside
 * the issuer as signing, the web stream under the body reader as body), the garbage collector to its own
 * line, and whatever no stage claims (promise plumbing, microtasks, Node internals between the app's frames)
 * to "runtime".
 */

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string };
  readonly children?: readonly number[];
}

export interface CpuProfileData {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

/** The stages of a token, in the order a request meets them. */
export const TOKEN_STAGES = [
  'request parsing (limits, client address, path id, query, key header, scope)',
  'body (bounded read, form / JSON parse)',
  'credential lookup (secret store, record)',
  'key comparison (SHA-256 digests, constant time)',
  'claims (payload / SWT claims and encodings, jti, key selection)',
  'signing (ES256 / HMAC-SHA256)',
  'answer (body)',
  'headers (security, correlation, Content-Length)',
  'limiter (failed attempts)',
  'ledger (row facts, record)',
  'logging',
  'wrapper (services, per-request view, outcome)',
  'garbage collection',
  'runtime (promises, microtasks, Node internals)',
  'other threads (parallel GC, compiler)',
] as const;
export type TokenStage = (typeof TOKEN_STAGES)[number];

/** [function name, file suffix] → stage. The first rule that matches a frame wins. */
const RULES: readonly (readonly [RegExp, RegExp, TokenStage])[] = [
  [
    /^(signJws|signOneShot|SignJob|sign|hmacBase64)$/,
    /jwtIssuer\.js$|swt\.js$|^node:internal\/crypto\/sig$|^$/,
    'signing (ES256 / HMAC-SHA256)',
  ],
  [
    /^(secretDigest|matchKeyDigestSlot|verify)$/,
    /constantTime\.js$|credentialDirectory\.js$/,
    'key comparison (SHA-256 digests, constant time)',
  ],
  [/./, /\/shared\/(secrets|credentials)\//, 'credential lookup (secret store, record)'],
  [/^(attributedServices)$/, /stsFunction\.js$/, 'credential lookup (secret store, record)'],
  [
    /^(readBoundedBody|parseFormBody|decodeComponent|formFieldCount|parseLimitedAccessTokenBody|jsonNestingExceeds|property)$/,
    /stsFunction\.js$|boundedBody\.js$|formBody\.js$|requestLimits\.js$|limitedAccessTokenRequest\.js$/,
    'body (bounded read, form / JSON parse)',
  ],
  [
    /./,
    /\/shared\/tokens\/(jwtIssuer|jwtSegment|signingKeyRing|swt)\.js$|\/shared\/flows\/(mixedRealityClaims|cognitiveClaims|wrapToken|issueToken|issueLimitedAccessToken)\.js$/,
    'claims (payload / SWT claims and encodings, jti, key selection)',
  ],
  [
    /^(securityHeaders|newCorrelationVector|addCorrelationHeader|withContentLength)$/,
    /responseHeaders\.js$|stsFunction\.js$/,
    'headers (security, correlation, Content-Length)',
  ],
  [/./, /\/shared\/security\/(failedAttemptLimiter|refusalAfterLimits)\.js$/, 'limiter (failed attempts)'],
  [/^(jwtIssuanceFacts)$/, /jwtAnswers\.js$/, 'ledger (row facts, record)'],
  [/./, /\/shared\/ledger\//, 'ledger (row facts, record)'],
  [/./, /\/shared\/logging\//, 'logging'],
  [
    /./,
    /\/shared\/(security\/requestLimits|http\/clientAddress|http\/queryParameters)\.js$|\/shared\/flows\/(mixedRealityToken|cognitiveCaller|cognitiveSubscriptionKey|cognitiveEntraCaller|mixedRealityEntraCaller|wrapScope|limitedAccessTokenRequest)\.js$/,
    'request parsing (limits, client address, path id, query, key header, scope)',
  ],
  [/^(isGuid)$/, /stsFunction\.js$/, 'request parsing (limits, client address, path id, query, key header, scope)'],
  [/./, /\/functions\/[A-Za-z]+\.js$|jwtAnswers\.js$/, 'answer (body)'],
  [/./, /\/shared\/(http|app|services|functionsApp)/, 'wrapper (services, per-request view, outcome)'],
];

function stageOf(node: ProfileNode): TokenStage | undefined {
  const { functionName, url } = node.callFrame;
  if (functionName === '(garbage collector)') return 'garbage collection';
  for (const [name, file, stage] of RULES) if (name.test(functionName) && file.test(url)) return stage;
  return undefined;
}

/**
 * Each stage's share (0..1) of the busy time in `profiles` (one profile, or several taken one batch at a time and
 * counted together), which must hold nothing but calls of the handler and the loop issuing them: samples that no
 * stage claims and that sit under a frame of `loopFile` (the benchmark's own loop) are left out, as are idle and
 * `(program)` samples.
 */
export function tokenStageShares(
  profiles: CpuProfileData | readonly CpuProfileData[],
  loopFile: RegExp,
): Map<TokenStage, number> {
  const time = new Map<TokenStage, number>();
  let total = 0;
  const list: readonly CpuProfileData[] = 'nodes' in profiles ? [profiles] : profiles;
  for (const profile of list) {
    total += addStageTimes(profile, loopFile, time);
  }
  const shares = new Map<TokenStage, number>();
  for (const stage of TOKEN_STAGES) shares.set(stage, total > 0 ? (time.get(stage) ?? 0) / total : 0);
  return shares;
}

/** Adds each stage's busy time in `profile` to `time`; returns the busy time counted. */
function addStageTimes(profile: CpuProfileData, loopFile: RegExp, time: Map<TokenStage, number>): number {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parentOf = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parentOf.set(child, node.id);
  let total = 0;
  for (let i = 0; i < profile.samples.length; i += 1) {
    const span = profile.timeDeltas[i + 1];
    const leaf = byId.get(profile.samples[i] as number);
    if (span === undefined || !leaf) continue;
    if (['(idle)', '(program)', '(root)'].includes(leaf.callFrame.functionName)) continue;
    let stage: TokenStage | undefined;
    let inLoop = false;
    for (let id: number | undefined = leaf.id; id !== undefined; id = parentOf.get(id)) {
      const node = byId.get(id);
      if (!node) break;
      stage ??= stageOf(node);
      if (loopFile.test(node.callFrame.url)) inLoop = true;
    }
    if (stage === undefined && inLoop) continue;
    stage ??= 'runtime (promises, microtasks, Node internals)';
    time.set(stage, (time.get(stage) ?? 0) + span);
    total += span;
  }
  return total;
}
