import { describe, expect, it } from 'vitest';
import { UpstreamError } from '../../shared/upstream/upstreamErrors.js';
import { azureHostPolicy, checkUpstreamEndpoint, type UpstreamService } from '../../shared/upstream/upstreamHosts.js';

const refusal = (service: UpstreamService, endpoint: string): string => {
  try {
    checkUpstreamEndpoint(service, endpoint, azureHostPolicy);
  } catch (error) {
    expect(error).toBeInstanceOf(UpstreamError);
    expect(error).toMatchObject({ failure: 'configuration' });
    return (error as Error).message;
  }
  throw new Error(`${endpoint} was accepted for ${service}`);
};

describe('documented hosts are accepted, each for its own service only (docs/upstream.md#hosts)', () => {
  it.each<[UpstreamService, string]>([
    ['mixedReality', 'https://sts.mixedreality.azure.com'],
    ['mixedReality', 'https://sts.eastus2.mixedreality.azure.com/'],
    ['mixedReality', 'https://STS.SouthCentralUS.MixedReality.Azure.com'],
    ['cognitive', 'https://westus.api.cognitive.microsoft.com'],
    ['cognitive', 'https://contoso-speech.cognitiveservices.azure.com/'],
    ['cognitive', 'https://usgovarizona.api.cognitive.microsoft.us'],
    ['cognitive', 'https://contoso.cognitiveservices.azure.us'],
    ['cognitive', 'https://chinaeast2.api.cognitive.azure.cn'],
    ['cognitive', 'https://contoso.cognitiveservices.azure.cn'],
    ['acsWrap', 'https://contoso-sb.accesscontrol.windows.net'],
    ['acsWrap', 'https://contoso-sb.accesscontrol.windows.net/WRAPv0.9'],
    ['acsWrap', 'https://contoso-sb.accesscontrol.chinacloudapi.cn/WRAPv0.9/'],
  ])('%s: %s', (service, endpoint) => {
    expect(checkUpstreamEndpoint(service, endpoint).protocol).toBe('https:');
  });
});

describe('everything an operator or attacker tried is refused', () => {
  it.each<[UpstreamService, string, RegExp]>([
    ['cognitive', 'https://127.0.0.1:8443', /IP address/],
    ['cognitive', 'https://127.0.0.1', /IP address/],
    ['cognitive', 'https://localhost', /documented host/],
    ['cognitive', 'https://[::1]', /IP address/],
    ['cognitive', 'https://0x7f000001', /IP address/],
    ['cognitive', 'https://2130706433', /IP address/],
    ['cognitive', 'https://westus.api.cognitive.microsoft.com.evil.example', /documented host/],
    ['cognitive', 'https://evil.example/westus.api.cognitive.microsoft.com', /documented host|path/],
    ['cognitive', 'https://westus.api.cognitive.microsoft.com:8443', /documented host/],
    ['cognitive', 'https://westus.api.cognitive.microsoft.com.', /dot/],
    ['cognitive', 'https://contoso-sb.accesscontrol.windows.net', /documented host/],
    ['acsWrap', 'https://westus.api.cognitive.microsoft.com', /documented host/],
    ['mixedReality', 'https://westus.api.cognitive.microsoft.com', /documented host/],
    ['cognitive', 'https://evil.example\\@westus.api.cognitive.microsoft.com', /backslash/],
    ['cognitive', 'https://evil.example@westus.api.cognitive.microsoft.com', /user info/],
    ['cognitive', 'https://user:pass@westus.api.cognitive.microsoft.com', /user info/],
    ['cognitive', 'http://westus.api.cognitive.microsoft.com', /https/],
    ['cognitive', 'https://westus.api.cognitive.microsoft.com/?x=1', /query/],
    ['cognitive', 'https://westus.api.cognitive.microsoft.com#frag', /fragment/],
    ['cognitive', 'https://westus.api.cognitive.microsoft.com/base', /path/],
    ['cognitive', ' https://westus.api.cognitive.microsoft.com', /spaces/],
    ['cognitive', 'https://westus.api.cognitive.microsoft.com\t', /spaces/],
    ['cognitive', 'https://wëstus.api.cognitive.microsoft.com', /non-ASCII/],
    ['cognitive', 'https://a.b.api.cognitive.microsoft.com', /documented host/],
    ['cognitive', 'https://-x.api.cognitive.microsoft.com', /documented host/],
    ['acsWrap', 'https://contoso.accesscontrol.windows.net', /documented host/],
    ['acsWrap', 'https://contoso-sb.accesscontrol.windows.net/other', /path/],
    ['mixedReality', 'https://evil.mixedreality.azure.com', /documented host/],
    ['mixedReality', 'https://sts.a.b.mixedreality.azure.com', /documented host/],
    ['cognitive', 'westus.api.cognitive.microsoft.com', /absolute URL/],
  ])('%s: %s', (service, endpoint, why) => {
    expect(refusal(service, endpoint)).toMatch(why);
  });
});
