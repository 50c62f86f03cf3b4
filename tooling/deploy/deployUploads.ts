import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { listFiles } from '../../tools/packageApp.js';

/**
 * What each deploy tool would put in its zip for a folder, computed offline with the tools' own rules (read in
 * their sources, summarised in docs/deploy.md):
 *
 * - Core Tools (`func azure functionapp publish`, `FileSystemHelpers.GetLocalFiles`): every file under the folder
 *   that holds host.json except the `.git` and `.vscode` folders and the files `.funcignore`, `.gitignore`,
 *   `local.settings.json` and `project.lock.json`, then what `.funcignore` denies.
 * - azd (`host: function`, `createDeployableZip`): every file under the service's package folder (`project`
 *   joined with `dist`) except a `.azure` folder, the ignore file `.funcignore` itself and `local.settings.json`,
 *   then what `.funcignore` denies; without a `.funcignore`, a JS/TS service's `node_modules` is left out unless
 *   `remoteBuild: false`.
 *
 * `.funcignore` is read with gitignore rules (the subset both parsers agree on): `#` comments, `!` negation,
 * `*`, `?` and `**`, a trailing `/` for folders only, a pattern with an inner `/` anchored at the root; the
 * last matching line wins, and a denied folder denies everything in it.
 */

export interface UploadPreview {
  readonly files: readonly string[];
}

/** Files `func azure functionapp publish` would zip from `root`. */
export async function coreToolsUpload(root: string): Promise<UploadPreview> {
  const rules = await readIgnoreRules(root);
  const files = (await listFiles(root)).filter((file) => {
    const parts = file.split('/');
    if (parts.slice(0, -1).some((folder) => folder === '.git' || folder === '.vscode')) return false;
    if (['.funcignore', '.gitignore', 'local.settings.json', 'project.lock.json'].includes(parts.at(-1) ?? ''))
      return false;
    return !isDenied(rules, file);
  });
  return { files };
}

export interface AzdService {
  /** The service's package folder: `project` joined with `dist`. */
  readonly packageRoot: string;
  readonly remoteBuild?: boolean;
}

/** Files `azd deploy` would zip for a `host: function`, `language: js|ts` service. */
export async function azdUpload({ packageRoot, remoteBuild }: AzdService): Promise<UploadPreview> {
  const rules = await readIgnoreRules(packageRoot);
  const files = (await listFiles(packageRoot)).filter((file) => {
    const parts = file.split('/');
    if (parts.slice(0, -1).includes('.azure')) return false;
    const name = parts.at(-1) ?? '';
    if (name === '.funcignore' || name === 'local.settings.json') return false;
    if (rules) return !isDenied(rules, file);
    return !(parts.slice(0, -1).includes('node_modules') && remoteBuild !== false);
  });
  return { files };
}

interface IgnoreRule {
  readonly negated: boolean;
  readonly directoryOnly: boolean;
  readonly pattern: RegExp;
}

async function readIgnoreRules(root: string): Promise<IgnoreRule[] | undefined> {
  let text: string;
  try {
    text = await readFile(join(root, '.funcignore'), 'utf8');
  } catch {
    return undefined;
  }
  const rules: IgnoreRule[] = [];
  for (const raw of text.replace(/^\uFEFF/, '').split(/\r?\n/)) {
    let line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const negated = line.startsWith('!');
    if (negated) line = line.slice(1);
    const directoryOnly = line.endsWith('/');
    if (directoryOnly) line = line.slice(0, -1);
    const anchored = line.includes('/');
    if (line.startsWith('/')) line = line.slice(1);
    const body = globToRegExp(line);
    rules.push({ negated, directoryOnly, pattern: new RegExp(anchored ? `^${body}$` : `^(?:.*/)?${body}$`) });
  }
  return rules;
}

function globToRegExp(glob: string): string {
  let out = '';
  for (let i = 0; i < glob.length; i += 1) {
    const c = glob[i] ?? '';
    if (c === '*' && glob[i + 1] === '*') {
      // `**/` is any number of folders (none included); `**` elsewhere is anything.
      if (glob[i + 2] === '/') {
        out += '(?:.*/)?';
        i += 2;
      } else {
        out += '.*';
        i += 1;
      }
    } else if (c === '*') out += '[^/]*';
    else if (c === '?') out += '[^/]';
    else out += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return out;
}

/** A file is denied when the last rule matching it, or any folder above it, denies. */
function isDenied(rules: readonly IgnoreRule[] | undefined, file: string): boolean {
  if (!rules) return false;
  const parts = file.split('/');
  for (let depth = 1; depth < parts.length; depth += 1) {
    if (verdict(rules, parts.slice(0, depth).join('/'), true)) return true;
  }
  return verdict(rules, file, false);
}

function verdict(rules: readonly IgnoreRule[], path: string, isDirectory: boolean): boolean {
  let denied = false;
  for (const rule of rules) {
    if (rule.directoryOnly && !isDirectory) continue;
    if (rule.pattern.test(path)) denied = !rule.negated;
  }
  return denied;
}
