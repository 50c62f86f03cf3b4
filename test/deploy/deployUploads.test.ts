import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { azdUpload, coreToolsUpload } from '../../tooling/deploy/deployUploads.js';

/** The offline upload previews apply each tool's fixed exclusions and the folder's .funcignore. */
describe('what each deploy tool would upload', () => {
  let root: string;
  const put = async (files: Record<string, string>) => {
    for (const [file, text] of Object.entries(files)) {
      await mkdir(dirname(join(root, file)), { recursive: true });
      await writeFile(join(root, file), text);
    }
  };

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'sts-uploads-'));
    await put({
      'host.json': '{}',
      'package.json': '{}',
      'local.settings.json': '{}',
      '.gitignore': '',
      '.git/HEAD': '',
      '.azure/env/.env': 'SECRET=1',
      'dist/functions/a.js': '',
      'dist/functions/a.js.map': '',
      'dist/chunks/b.js': '',
      'node_modules/x/index.js': '',
      'src/a.ts': '',
      'docs/notes.md': '',
    });
  });
  afterEach(() => rm(root, { recursive: true, force: true }));

  it('applies .funcignore globs, folder rules, anchoring and negation for both tools', async () => {
    await put({
      '.funcignore':
        '# sources and maps stay home\n*.ts\n*.map\n!dist/functions/a.js.map\nnode_modules/\n/docs\n.azure\n',
    });
    const func = await coreToolsUpload(root);
    expect(func.files).toEqual([
      'dist/chunks/b.js',
      'dist/functions/a.js',
      'dist/functions/a.js.map',
      'host.json',
      'package.json',
    ]);
    const azd = await azdUpload({ packageRoot: root, remoteBuild: false });
    // azd leaves out neither .git nor .gitignore (Core Tools does).
    expect(azd.files).toEqual([
      '.git/HEAD',
      '.gitignore',
      'dist/chunks/b.js',
      'dist/functions/a.js',
      'dist/functions/a.js.map',
      'host.json',
      'package.json',
    ]);
  });

  it('uploads node_modules with azd only when remoteBuild is false and there is no .funcignore', async () => {
    expect((await azdUpload({ packageRoot: root, remoteBuild: false })).files).toContain('node_modules/x/index.js');
    expect((await azdUpload({ packageRoot: root })).files).not.toContain('node_modules/x/index.js');
    const func = await coreToolsUpload(root);
    expect(func.files).toContain('node_modules/x/index.js');
    expect(func.files).not.toContain('local.settings.json');
    expect(func.files).not.toContain('.git/HEAD');
    expect(func.files).toContain('.azure/env/.env');
  });
});
