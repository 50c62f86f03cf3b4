import { mkdtemp, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { LeakScanner } from '../../tooling/fuzz/leakScanner.js';
import { FileSecretStore } from '../../shared/secrets/fileSecretStore.js';
import { encodeSwtComponent } from '../../shared/tokens/swt.js';
import { startTestHost, type TestHost } from '../support/localHostFixture.js';
import { createTestCredentials, type TestCredentials } from '../support/testCredentials.js';
import { countedServices, flowRequest, sendHttp } from './hardeningSupport.js';

/**
 * Regression tests for what `npm run fuzz` found (docs/hardening.md), one per finding, plus the fuzzer's own leak
 * oracle: a scanner that cannot see a leak would make every fuzz run pass.
 */

describe('finding: concurrent first reads of the embedded store saw an empty store (valid keys got 401, JWT flows 503)', () => {
  let directory: string;
  beforeAll(async () => {
    directory = await mkdtemp(join(tmpdir(), 'sts-store-race-'));
  });
  afterAll(async () => {
    await rm(directory, { recursive: true, force: true });
  });

  it('every one of 50 concurrent reads on a fresh store instance finds the secret', async () => {
    const path = join(directory, 'secrets.json');
    await new FileSecretStore(path).setSecret('answer', '42');
    const fresh = new FileSecretStore(path);
    const values = await Promise.all(Array.from({ length: 50 }, () => fresh.getSecret('answer')));
    expect(values.map((v) => v?.value)).toEqual(Array.from({ length: 50 }, () => '42'));
  });

  it('concurrent reads right after the file changed all see the new version', async () => {
    const path = join(directory, 'rotating.json');
    const writer = new FileSecretStore(path);
    await writer.setSecret('key', 'old');
    // The reader checks the file at most once a second (by the wall clock): only the clock is faked here, so
    // the test moves past that second at once while the file system stays real.
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      const reader = new FileSecretStore(path);
      expect((await reader.getSecret('key'))?.value).toBe('old');
      await writer.setSecret('key', 'new');
      expect((await reader.getSecret('key'))?.value).toBe('old'); // within the second: the file is not re-read
      vi.advanceTimersByTime(1_000);
      const values = await Promise.all(Array.from({ length: 50 }, () => reader.getSecret('key')));
      expect(new Set(values.map((v) => v?.value))).toEqual(new Set(['new']));
    } finally {
      vi.useRealTimers();
    }
  });

  it('over HTTP, a burst of valid requests on a freshly started app is all 200', async () => {
    const credentials = await createTestCredentials();
    const { services } = await countedServices(credentials, () => new Date());
    const host = await startTestHost({ services });
    try {
      const answers = await Promise.all(
        Array.from({ length: 30 }, (_, i) =>
          sendHttp(host.url, flowRequest(i % 2 ? 'issueToken' : 'mixedRealityToken', credentials)),
        ),
      );
      expect(answers.map((a) => a.status)).toEqual(Array.from({ length: 30 }, () => 200));
    } finally {
      await host.close();
      await credentials.remove();
    }
  });
});

describe('local host findings', () => {
  let credentials: TestCredentials;
  let host: TestHost;
  beforeAll(async () => {
    credentials = await createTestCredentials();
    const { services } = await countedServices(credentials, () => new Date());
    host = await startTestHost({ services });
  });
  afterAll(async () => {
    await host.close();
    await credentials.remove();
  });

  it('a Host header with a port above 65535 was a 500 ("Failed to parse URL"); it is served like any other', async () => {
    const answer = await raw(
      host,
      'GET /.well-known/jwks.json HTTP/1.1\r\nHost: evil.example:99999\r\nConnection: close\r\n\r\n',
    );
    expect(answer.status).toBe(200);
    expect(host.logLines.join('\n')).not.toMatch(/failed/);
  });

  it('a body the client aborts or frames badly was logged as a host failure (and answered 500 when possible); it is a 400', async () => {
    const before = host.logLines.length;
    const badChunks = await raw(
      host,
      'POST /WRAPv0.9/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5;ext=1\r\nabcdefghij\r\nzz\r\n0\r\n\r\n',
    );
    expect([400, undefined]).toContain(badChunks.status);
    const aborted = await raw(host, 'POST /WRAPv0.9/ HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nwrap_name=', {
      endAfterWrite: true,
    });
    expect([400, undefined]).toContain(aborted.status);
    const lines = host.logLines.slice(before).join('\n');
    expect(lines).not.toMatch(/ 500 |failed/);
  });
});

describe('the fuzzer’s leak oracle', () => {
  const jwt = `eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.${'Qk9QxN3l2sVw5r7ZbTq1Yc8uHk0mLd4aPe6FgJn9WoXyRt2Ui3Oj5Kh7Ml1Nb8Vc0Zx4As6Df9Gq2We3Rt5Yu7'}`;
  const swt = `Audience=http%3a%2f%2fns%2f&ExpiresOn=1&Issuer=i&HMACSHA256=${encodeURIComponent('N9//0tSos78Me36+ioBH0sFKfd7eCsURlEIheoUbCJk=')}`;
  const key = 'r8LuxCKD7Z9sL0qW+e3/xY1aBcDeFgHiJkLmNoPqRsT=';

  it('sees a key raw, URL-encoded (either hex case) and base64url-encoded', () => {
    const scanner = new LeakScanner([{ value: key, label: 'key' }]);
    for (const text of [
      `x ${key} y`,
      `p=${encodeURIComponent(key)}`,
      `p=${encodeURIComponent(key).replace(/%[0-9A-F]{2}/g, (e) => e.toLowerCase())}`,
      key.replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, ''),
    ]) {
      expect(scanner.scan(text).map((l) => l.what)).toContain('secret');
    }
    expect(scanner.scan('nothing here but an unrelated dGhpcyBpcyBub3QgYSBrZXk=')).toEqual([]);
  });

  it('sees an issued JWT or SWT elsewhere, whole or truncated, but not in the response that carries it', () => {
    const scanner = new LeakScanner([]);
    const wrapValue = encodeSwtComponent(swt);
    expect(scanner.scan(`{"AccessToken":"${jwt}"}`, jwt)).toEqual([]);
    scanner.registerIssued(jwt);
    scanner.registerIssued(wrapValue);
    expect(scanner.tokenCount).toBe(2);
    expect(scanner.scan(`{"AccessToken":"${jwt}"}`).map((l) => l.what)).toEqual(['token']);
    expect(scanner.scan(`log: ${jwt.slice(0, jwt.length - 30)}…`).map((l) => l.what)).toEqual(['token']);
    expect(
      scanner.scan(`wrap_access_token=${wrapValue}&wrap_access_token_expires_in=10799`).map((l) => l.what),
    ).toContain('token');
    expect(scanner.scan('HMACSHA256=N9//0tSos78Me36+ioBH0sF')).not.toEqual([]);
    expect(scanner.scan(`another token eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.${'A'.repeat(86)}`)).toEqual([]);
  });
});

interface RawAnswer {
  readonly status: number | undefined;
}

/** Writes raw bytes to the host; resolves with the status of the first response, or undefined when closed without one. */
function raw(host: TestHost, text: string, options: { endAfterWrite?: boolean } = {}): Promise<RawAnswer> {
  const { port } = new URL(host.url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), '127.0.0.1');
    let received = '';
    socket.setTimeout(5_000, () => {
      socket.destroy();
      reject(new Error('no answer within 5 s'));
    });
    socket.on('data', (chunk: Buffer) => {
      received += chunk.toString('latin1');
    });
    socket.on('close', () => {
      const status = /^HTTP\/1\.1 (\d{3})/.exec(received)?.[1];
      resolve({ status: status ? Number(status) : undefined });
    });
    socket.on('error', () => undefined);
    socket.write(text, () => {
      if (options.endAfterWrite) socket.end();
    });
  });
}
