import Module from 'node:module';

/**
 * Loaded before every test file (vitest `setupFiles`): answers `require('@azure/functions-core')` the way the
 * Functions worker does (a Proxy on `Module.prototype.require`; azure-functions-nodejs-worker,
 * src/setupCoreModule.ts), with a core API that accepts registrations and hooks and does nothing with them.
 * Without it `@azure/functions` finds no runtime, switches to its test mode and warns on stderr for every
 * function file a test imports and every hook it registers; the tests serve the definitions themselves.
 */

const disposable = { dispose(): void {} };
const standInCore = {
  version: '3.9.0',
  hostVersion: '4.1037.0',
  Disposable: class {
    dispose(): void {}
  },
  log(): void {},
  setProgrammingModel(): void {},
  getProgrammingModel(): undefined {
    return undefined;
  },
  registerHook: () => disposable,
  registerFunction: () => disposable,
};

type Require = (this: unknown, id: string) => unknown;
const prototype = Module.prototype as unknown as { require: Require };
prototype.require = new Proxy(prototype.require, {
  apply(target: Require, self: unknown, args: [string]): unknown {
    return args[0] === '@azure/functions-core' ? standInCore : Reflect.apply(target, self, args);
  },
});
