import { readFile } from 'node:fs/promises';
import { projectRoot } from '../../tools/localHost/projectPaths.js';

/**
 * Reads a V8 CPU profile (`.cpuprofile`, as written by the inspector's `Profiler.stop`) and says where the
 * time went: self and inclusive time per function, and self time per area (a package, a folder of the app,
 * Node's internals, the garbage collector, idle).
 */

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
  readonly children?: readonly number[];
}

interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

export interface HotSpot {
  readonly name: string;
  /** Share of all sampled time (idle included), percent. */
  readonly selfPercent: number;
  readonly inclusivePercent: number;
}

export interface ProfileSummary {
  readonly path: string;
  readonly sampledMs: number;
  /** Share of sampled time the thread was busy (not idle), percent. */
  readonly busyPercent: number;
  readonly bySelf: readonly HotSpot[];
  readonly byInclusive: readonly HotSpot[];
  readonly areas: readonly { readonly area: string; readonly selfPercent: number }[];
}

/** Summarises the profile at `path`: the `top` functions by self and by inclusive time, and every area. */
export async function summarizeCpuProfile(path: string, top = 15): Promise<ProfileSummary> {
  const profile = JSON.parse(await readFile(path, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parentOf = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parentOf.set(child, node.id);

  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  const areas = new Map<string, number>();
  let total = 0;
  let idle = 0;
  for (let i = 0; i < profile.samples.length; i += 1) {
    // A sample stands for the time until the next one (the last sample's span is unknown: skipped).
    const span = profile.timeDeltas[i + 1];
    const node = byId.get(profile.samples[i] as number);
    if (span === undefined || !node) continue;
    total += span;
    const name = functionName(node);
    if (name === '(idle)') idle += span;
    self.set(name, (self.get(name) ?? 0) + span);
    areas.set(areaOf(node), (areas.get(areaOf(node)) ?? 0) + span);
    const seen = new Set<string>();
    for (let id: number | undefined = node.id; id !== undefined; id = parentOf.get(id)) {
      const ancestor = byId.get(id);
      if (!ancestor) break;
      const ancestorName = functionName(ancestor);
      if (ancestorName === '(root)' || seen.has(ancestorName)) continue;
      seen.add(ancestorName);
      inclusive.set(ancestorName, (inclusive.get(ancestorName) ?? 0) + span);
    }
  }
  const percent = (micros: number): number => (total > 0 ? (100 * micros) / total : 0);
  const ranked = (table: Map<string, number>): HotSpot[] =>
    [...table.entries()]
      .filter(([name]) => name !== '(idle)' && name !== '(program)')
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name]) => ({
        name,
        selfPercent: percent(self.get(name) ?? 0),
        inclusivePercent: percent(inclusive.get(name) ?? 0),
      }));
  return {
    path,
    sampledMs: total / 1000,
    busyPercent: percent(total - idle),
    bySelf: ranked(self),
    byInclusive: ranked(inclusive),
    areas: [...areas.entries()]
      .sort((a, b) => b[1] - a[1])
      .map(([area, micros]) => ({ area, selfPercent: percent(micros) })),
  };
}

function functionName(node: ProfileNode): string {
  const { functionName: name, url, lineNumber } = node.callFrame;
  if (!url) return name || '(anonymous)';
  return `${name || '(anonymous)'} ${shortUrl(url)}:${lineNumber + 1}`;
}

function shortUrl(url: string): string {
  const withoutScheme = url.startsWith('file://') ? decodeURIComponent(url.slice('file://'.length)) : url;
  const inModules = /node_modules\/((?:@[^/]+\/)?[^/]+)\/(.*)$/.exec(withoutScheme);
  if (inModules) return `${inModules[1]}/${inModules[2]}`;
  const inProject = withoutScheme.startsWith(projectRoot) ? withoutScheme.slice(projectRoot.length + 1) : withoutScheme;
  return inProject.replace(/^bench-results\/\.app-\d+\//, ''); // the benchmark's copy of dist/ reads as dist/
}

/** Where a function lives: a package, an app folder, Node internals, or a V8 pseudo-frame. */
function areaOf(node: ProfileNode): string {
  const { functionName: name, url } = node.callFrame;
  if (!url) return name.startsWith('(') ? name : '(native)';
  if (url.startsWith('node:')) return 'node: internals';
  const path = shortUrl(url);
  const inModules = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
  if (inModules) return `package ${inModules[1]}`;
  const folder = /^(dist\/(?:functions|shared\/[^/]+)|tool(?:s|ing)\/[^/]+)/.exec(path);
  return folder ? `app ${folder[1]}` : path;
}
