/**
 * Cross-origin calls from web pages (docs/cors.md): which origins may read this STS's answers, and what a
 * preflight is told. Nothing is allowed by default; `*` allows every origin and never goes with credentials
 * (this STS never sends `Access-Control-Allow-Credentials`: no flow uses cookies or client certificates).
 */
export interface CorsSettings {
  /** Serialized origins (`https://app.contoso.com`, `http://127.0.0.1:5173`), exactly as browsers send them. */
  readonly allowedOrigins: readonly string[];
  /** True when the list is `*`: every origin, answered with `Access-Control-Allow-Origin: *`. */
  readonly anyOrigin: boolean;
  /** `Access-Control-Max-Age` of a preflight answer (browsers cap it: Chromium at 7200 s). */
  readonly maxAgeSeconds: number;
}

export const CORS_OFF: CorsSettings = { allowedOrigins: [], anyOrigin: false, maxAgeSeconds: 600 };

/**
 * Parses `STS_CORS_ALLOWED_ORIGINS`: origins separated by commas or white space, each `http(s)://host[:port]`
 * with nothing after it (a trailing `/` is tolerated), or `*` alone. Problems are pushed with the setting's name.
 *
 * @example
 * parseAllowedOrigins('https://app.contoso.com, http://127.0.0.1:5173', problems);
 */
export function parseAllowedOrigins(
  raw: string | undefined,
  problems: string[],
): Pick<CorsSettings, 'allowedOrigins' | 'anyOrigin'> {
  const entries = (raw ?? '').split(/[\s,]+/).filter((entry) => entry !== '');
  if (entries.includes('*')) {
    if (entries.length > 1) problems.push('STS_CORS_ALLOWED_ORIGINS: "*" allows every origin and must stand alone');
    return { allowedOrigins: [], anyOrigin: true };
  }
  const origins: string[] = [];
  for (const entry of entries) {
    const origin = originOf(entry);
    if (origin === undefined) {
      problems.push(
        `STS_CORS_ALLOWED_ORIGINS: "${entry}" is not an origin (scheme://host[:port], http or https, no path)`,
      );
    } else if (!origins.includes(origin)) {
      origins.push(origin);
    }
  }
  return { allowedOrigins: origins, anyOrigin: false };
}

/** The origin `entry` stands for, serialized as a browser sends it; undefined when it is anything more or less. */
function originOf(entry: string): string | undefined {
  let url: URL;
  try {
    url = new URL(entry);
  } catch {
    return undefined;
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return undefined;
  if (url.username || url.password || url.search || url.hash || url.pathname !== '/') return undefined;
  if (entry.includes('*')) return undefined;
  return url.origin;
}
