import { readdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { UsageError, type StsCommand } from './command.js';

/** `npm run sts -- <command> [options]`: the operator's tool for credentials, keys and the ledger. */
async function loadCommands(): Promise<StsCommand[]> {
  const folder = join(dirname(fileURLToPath(import.meta.url)), 'commands');
  const files = (await readdir(folder)).filter((f) => /\.(ts|js)$/.test(f) && !f.endsWith('.d.ts')).sort();
  const commands: StsCommand[] = [];
  for (const file of files) {
    const module = (await import(pathToFileURL(join(folder, file)).href)) as { command?: StsCommand };
    if (module.command) commands.push(module.command);
  }
  return commands.sort((a, b) => a.name.localeCompare(b.name));
}

function help(commands: readonly StsCommand[]): string {
  const width = Math.max(...commands.map((c) => c.name.length), 4);
  return [
    'Usage: npm run sts -- <command> [options]',
    '',
    'Commands:',
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    "Run `npm run sts -- <command> --help` for a command's options.",
    'The store is the embedded file store unless KEY_VAULT_URL is set (then Key Vault, with your Azure identity).',
  ].join('\n');
}

async function main(argv: readonly string[]): Promise<number> {
  const commands = await loadCommands();
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log(help(commands));
    return name ? 0 : 2;
  }
  const command = commands.find((c) => c.name === name);
  if (!command) {
    console.error(`Unknown command "${name}".\n\n${help(commands)}`);
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    console.log(command.usage);
    return 0;
  }
  try {
    return await command.run(rest);
  } catch (error) {
    if (error instanceof UsageError) {
      console.error(`${command.name}: ${error.message}\n\n${command.usage}`);
      return 2;
    }
    console.error(`${command.name} failed: ${error instanceof Error ? error.message : String(error)}`);
    return 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
