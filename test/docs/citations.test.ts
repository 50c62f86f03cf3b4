import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/**
 * Every citation a reader of the code or the docs can follow resolves inside the repository: `docs/…` paths
 * name a page that exists and, with `#anchor`, a heading or `<a id>` on it; Markdown links between pages land;
 * and nothing cites material the repository does not have (the team's research notes, issue numbers).
 */

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const SOURCE_FOLDERS = ['functions', 'shared', 'tools', 'tooling', 'test', 'infra'];
const SOURCE_FILE = /\.(ts|mjs|bicep|bicepparam)$/;
const THIS_FILE = relative(ROOT, fileURLToPath(import.meta.url));

function filesUnder(folder: string, accept: RegExp): string[] {
  const found: string[] = [];
  for (const name of readdirSync(join(ROOT, folder))) {
    if (name === 'node_modules' || name.startsWith('.')) continue;
    const path = join(folder, name);
    if (statSync(join(ROOT, path)).isDirectory()) found.push(...filesUnder(path, accept));
    else if (accept.test(name)) found.push(path);
  }
  return found;
}

const sources = [...SOURCE_FOLDERS.flatMap((folder) => filesUnder(folder, SOURCE_FILE)), 'azure.yaml'].filter(
  (file) => file !== THIS_FILE,
);
const pages = ['README.md', ...filesUnder('docs', /\.md$/)];
const read = (file: string): string => readFileSync(join(ROOT, file), 'utf8');

/** The anchors a page offers: explicit `<a id="…">` and GitHub's slugs of its headings. */
function anchorsOf(page: string): Set<string> {
  const text = read(page);
  const anchors = new Set([...text.matchAll(/<a id="([^"]+)"/g)].map((match) => match[1] ?? ''));
  for (const [, heading = ''] of text.matchAll(/^#+\s+(.*)$/gm)) {
    anchors.add(
      heading
        .replace(/<[^>]*>/g, '')
        .trim()
        .toLowerCase()
        .replace(/[^a-z0-9 _-]/g, '')
        .replace(/ /g, '-'),
    );
  }
  return anchors;
}

function unresolved(target: string, from: string): string | undefined {
  const [path = '', anchor] = target.split('#');
  const page = path === '' ? from : path;
  try {
    statSync(join(ROOT, page));
  } catch {
    return `${from}: ${target} (no such file)`;
  }
  if (anchor && page.endsWith('.md') && !anchorsOf(page).has(anchor)) return `${from}: ${target} (no such anchor)`;
  return undefined;
}

describe('citations', () => {
  it('every docs/… reference in code names a page and anchor that exist', () => {
    const broken: string[] = [];
    for (const file of sources) {
      for (const [target = ''] of read(file).matchAll(/(?<!['"`])\bdocs\/[A-Za-z0-9/._-]+\.md(?:#[a-z0-9-]+)?/g)) {
        const problem = unresolved(target, file);
        if (problem) broken.push(problem);
      }
    }
    expect(broken).toEqual([]);
  });

  it('every relative link of the README and docs/ lands on a page and anchor that exist', () => {
    const broken: string[] = [];
    for (const page of pages) {
      for (const [, target = ''] of read(page).matchAll(/\]\(([^)\s]+)\)/g)) {
        if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // https:, mailto:
        const [path = '', anchor] = target.split('#');
        const resolved = path === '' ? page : normalize(join(dirname(page), path));
        const problem = unresolved(anchor ? `${resolved}#${anchor}` : resolved, page);
        if (problem) broken.push(problem);
      }
    }
    expect(broken).toEqual([]);
  });

  it('nothing cites material the repository does not have: team notes or issue numbers', () => {
    const offending: string[] = [];
    for (const file of [...sources, ...pages]) {
      read(file)
        .split('\n')
        .forEach((line, index) => {
          if (/contracts\.md|STYLE\.md|\.\.\/shared\/(seeds|contracts|real-worker)|\bissue #\d+|\(#\d+ §/.test(line))
            offending.push(`${file}:${index + 1}`);
        });
    }
    expect(offending).toEqual([]);
  });
});
