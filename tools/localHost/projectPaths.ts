import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (this file lives in `tools/localHost/`), so the CLIs work from any working directory. */
export const projectRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** `host.json`, read for `extensions.http.routePrefix` and `functionTimeout`. */
export const hostJsonPath = join(projectRoot, 'host.json');

/** The git-ignored folder where `--https` keeps its self-signed certificate. */
export const tlsFolder = join(projectRoot, '.sts', 'tls');
