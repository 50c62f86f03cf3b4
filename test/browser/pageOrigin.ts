import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A web origin on loopback (`http://127.0.0.1:<port>`) serving an empty page at `/` and, at `/signin`, the
 * Microsoft Entra access token of a signed-in user (what MSAL hands a page after sign-in), from `signIn`
 * (`/signin?as=<user>` picks the user).
 */
export interface PageOrigin {
  readonly origin: string;
  close(): Promise<void>;
}

export async function startPageOrigin(signIn?: (user: string) => Promise<string>): Promise<PageOrigin> {
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://page.invalid');
    if (url.pathname === '/signin' && signIn) {
      signIn(url.searchParams.get('as') ?? '').then(
        (accessToken) => {
          res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
          res.end(JSON.stringify({ accessToken }));
        },
        () => {
          res.writeHead(500);
          res.end();
        },
      );
      return;
    }
    if (url.pathname === '/') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end('<!doctype html><title>page</title><p>page</p>');
      return;
    }
    res.writeHead(404);
    res.end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
