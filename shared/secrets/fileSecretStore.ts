import { randomUUID } from 'node:crypto';
import { mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import {
  isUsable,
  NOT_AT_HAND,
  SECRET_NAME_PATTERN,
  type SecretVersion,
  type SetSecretOptions,
  type WritableSecretStore,
} from './secretStore.js';

/** On-disk shape: secret name → versions, oldest first (as written). */
interface StoredVersion {
  version: string;
  value: string;
  enabled: boolean;
  createdOn: string;
  notBefore?: string;
  expiresOn?: string;
  contentType?: string;
  tags?: Record<string, string>;
}
type StoredFile = { secrets: Record<string, StoredVersion[]> };

const NO_VERSIONS: readonly SecretVersion[] = Object.freeze([]);

/** How often a read checks whether the file changed on disk. */
const CHECK_INTERVAL_MS = 1_000;

/**
 * The embedded default: a local, git-ignored JSON file with Key Vault's semantics (versions, enabled,
 * validity window). Re-read when the file changes on disk (checked at most once a second), so keys rotated
 * with the admin CLI are picked up without a restart. Written atomically (temp file + rename), mode 0600.
 */
export class FileSecretStore implements WritableSecretStore {
  private snapshot: StoredFile = { secrets: {} };
  private loadedMtimeMs = -1;
  private lastCheckMs = 0;
  /** The reload under way, which every concurrent reader waits for (else they would read the old snapshot). */
  private reloading: Promise<void> | undefined;
  /** Versions as handed out, per name, until the snapshot changes: the same objects on every read, so
   * callers can memoise what they derive from a version (parsed records, key digests). Part of the snapshot
   * (dropped whole when the file changes, never more names than the file holds), so not a cache of its own. */
  private views = new Map<string, readonly SecretVersion[]>();

  constructor(
    readonly path: string,
    private readonly clock: () => Date = () => new Date(),
  ) {}

  async getSecret(name: string): Promise<SecretVersion | undefined> {
    await this.refresh();
    return this.currentOf(name);
  }

  /** The answer of {@link getSecret} while the file needs no check (checked less than a second ago, no reload). */
  secretAtHand(name: string): SecretVersion | undefined | typeof NOT_AT_HAND {
    if (this.reloading || Date.now() - this.lastCheckMs >= CHECK_INTERVAL_MS) return NOT_AT_HAND;
    return this.currentOf(name);
  }

  /** Checks the file now (not at most once a second), then answers as {@link getSecret}. */
  async getFreshSecret(name: string): Promise<SecretVersion | undefined> {
    await this.refresh(true);
    return this.getSecret(name);
  }

  async getSecretVersions(name: string): Promise<readonly SecretVersion[]> {
    await this.refresh();
    return this.versionsOf(name);
  }

  /** The current version of `name` in the snapshot if it is usable now. */
  private currentOf(name: string): SecretVersion | undefined {
    const current = this.versionsOf(name)[0];
    return current && isUsable(current, this.clock()) ? current : undefined;
  }

  /** The versions of `name` in the snapshot, newest first, as the same objects until the snapshot changes. */
  private versionsOf(name: string): readonly SecretVersion[] {
    let view = this.views.get(name);
    if (!view) {
      const stored = Object.hasOwn(this.snapshot.secrets, name) ? this.snapshot.secrets[name] : undefined;
      // Unknown names are not remembered: the views stay bounded by the secrets in the file, however many
      // made-up names a flood asks for (the snapshot answers "absent" from memory anyway).
      if (!stored || stored.length === 0) return NO_VERSIONS;
      view = stored.map((v) => toSecretVersion(name, v)).reverse();
      this.views.set(name, view);
    }
    return view;
  }

  /** Secret names whose versions are held as handed-out views (at most the number of secrets in the file). */
  get viewCount(): number {
    return this.views.size;
  }

  async setSecret(name: string, value: string, options: SetSecretOptions = {}): Promise<SecretVersion> {
    if (!SECRET_NAME_PATTERN.test(name)) throw new Error(`Invalid secret name "${name}"`);
    await this.refresh(true);
    const stored: StoredVersion = {
      version: randomUUID().replaceAll('-', ''),
      value,
      enabled: options.enabled ?? true,
      createdOn: this.clock().toISOString(),
      ...(options.notBefore ? { notBefore: options.notBefore.toISOString() } : {}),
      ...(options.expiresOn ? { expiresOn: options.expiresOn.toISOString() } : {}),
      ...(options.contentType ? { contentType: options.contentType } : {}),
      ...(options.tags ? { tags: { ...options.tags } } : {}),
    };
    (this.snapshot.secrets[name] ??= []).push(stored);
    await this.persist();
    return toSecretVersion(name, stored);
  }

  async updateSecretVersion(name: string, version: string, patch: { readonly enabled: boolean }): Promise<void> {
    await this.refresh(true);
    const stored = this.snapshot.secrets[name]?.find((v) => v.version === version);
    if (!stored) throw new Error(`Secret "${name}" has no version "${version}"`);
    stored.enabled = patch.enabled;
    await this.persist();
  }

  async listSecretNames(): Promise<readonly string[]> {
    await this.refresh(true);
    return Object.keys(this.snapshot.secrets).sort();
  }

  /** True when the store file exists (the demo bootstrap runs only when it does not). */
  async exists(): Promise<boolean> {
    try {
      await stat(this.path);
      return true;
    } catch {
      return false;
    }
  }

  private async refresh(force = false): Promise<void> {
    if (this.reloading) {
      await this.reloading;
      if (!force) return;
    }
    const nowMs = Date.now();
    if (!force && nowMs - this.lastCheckMs < CHECK_INTERVAL_MS) return;
    this.lastCheckMs = nowMs;
    this.reloading ??= this.reload().finally(() => {
      this.reloading = undefined;
    });
    await this.reloading;
  }

  private async reload(): Promise<void> {
    let mtimeMs: number;
    try {
      mtimeMs = (await stat(this.path)).mtimeMs;
    } catch {
      this.snapshot = { secrets: {} };
      this.views.clear();
      this.loadedMtimeMs = -1;
      return;
    }
    if (mtimeMs === this.loadedMtimeMs) return;
    const parsed = JSON.parse(await readFile(this.path, 'utf8')) as StoredFile;
    this.snapshot = { secrets: parsed.secrets ?? {} };
    this.views.clear();
    this.loadedMtimeMs = mtimeMs;
  }

  private async persist(): Promise<void> {
    this.views.clear(); // the snapshot was just changed in place
    await mkdir(dirname(this.path), { recursive: true, mode: 0o700 });
    const temp = `${this.path}.${process.pid}.${randomUUID()}.tmp`;
    await writeFile(temp, `${JSON.stringify(this.snapshot, null, 2)}\n`, { mode: 0o600 });
    await rename(temp, this.path);
    this.loadedMtimeMs = (await stat(this.path)).mtimeMs;
  }
}

function toSecretVersion(name: string, v: StoredVersion): SecretVersion {
  return {
    name,
    version: v.version,
    value: v.value,
    enabled: v.enabled,
    createdOn: new Date(v.createdOn),
    notBefore: v.notBefore ? new Date(v.notBefore) : undefined,
    expiresOn: v.expiresOn ? new Date(v.expiresOn) : undefined,
    contentType: v.contentType,
    tags: v.tags,
  };
}
