import { randomUUID } from 'node:crypto';
import { format } from 'node:util';
import azureFunctions, { type InvocationContext, type Timer } from '@azure/functions';
import { redact } from '../../shared/logging/redact.js';

/** What the local host needs of a timer function: the object a timer file exports as `definition`. */
export interface TimerFunctionLike {
  name: string;
  /** NCRONTAB with seconds, `{second} {minute} {hour} {day} {month} {day of week}`, UTC. */
  schedule: string;
  handler: (timer: Timer, context: InvocationContext) => unknown;
}

export interface RunningLocalTimers {
  /** Cancels every schedule and waits for a run in progress to end. */
  stop(): Promise<void>;
}

export interface LocalTimerOptions {
  /** Run each timer once this long after start (a local run is often shorter than an hour). Default 2 s; negative: never. */
  readonly firstRunAfterMs?: number;
  readonly log?: (line: string) => void;
}

const { InvocationContext: Context } = azureFunctions;

/**
 * Runs timer functions the way the Functions host would on one instance: on their NCRONTAB schedule (UTC),
 * never two runs of one timer at a time, and a run that throws is logged, not fatal. Locally each timer also
 * runs once shortly after start, so a developer's ledger is trimmed whenever `npm start` starts, however
 * briefly it runs. A schedule this host cannot read is reported and that timer is not run.
 *
 * @example
 * const timers = startLocalTimers(timerDefinitions, { log: console.log });
 * await timers.stop();
 */
export function startLocalTimers(
  definitions: readonly TimerFunctionLike[],
  options: LocalTimerOptions = {},
): RunningLocalTimers {
  const log = options.log ?? ((line: string) => console.log(line));
  const firstRunAfterMs = options.firstRunAfterMs ?? 2_000;
  const handles = new Set<NodeJS.Timeout>();
  const running = new Set<Promise<void>>();
  let stopped = false;

  for (const definition of definitions) {
    let schedule: CronSchedule;
    try {
      schedule = parseNcrontab(definition.schedule);
    } catch (error) {
      log(`local host: timer ${definition.name} not run: ${(error as Error).message}`);
      continue;
    }
    let busy = false;
    const fire = (isPastDue: boolean): void => {
      if (stopped || busy) return;
      busy = true;
      const invocationId = randomUUID();
      const context = new Context({
        invocationId,
        functionName: definition.name,
        logHandler: (level, ...args) =>
          log(`[${level}] ${definition.name} ${invocationId} ${redact(format(...args), 1_000)}`),
      });
      const now = new Date();
      const status = {
        last: now.toISOString(),
        next: nextOccurrence(schedule, now).toISOString(),
        lastUpdated: now.toISOString(),
      };
      const timer: Timer = { isPastDue, schedule: { adjustForDST: false }, scheduleStatus: status };
      const run = (async () => {
        try {
          await definition.handler(timer, context);
        } catch (error) {
          log(
            `local host: timer ${definition.name} ${invocationId} failed: ${redact(error instanceof Error ? error.message : String(error), 500)}`,
          );
        } finally {
          busy = false;
        }
      })();
      running.add(run);
      void run.finally(() => running.delete(run));
    };
    const scheduleNext = (): void => {
      if (stopped) return;
      const now = new Date();
      const next = nextOccurrence(schedule, now);
      // setTimeout holds at most ~24.8 days; a later occurrence is reached in steps.
      const wait = Math.min(next.getTime() - now.getTime(), 2 ** 31 - 1);
      const handle = setTimeout(() => {
        handles.delete(handle);
        if (Date.now() >= next.getTime()) fire(false);
        scheduleNext();
      }, wait);
      handle.unref();
      handles.add(handle);
    };
    if (firstRunAfterMs >= 0) {
      const handle = setTimeout(() => {
        handles.delete(handle);
        fire(false);
      }, firstRunAfterMs);
      handle.unref();
      handles.add(handle);
    }
    scheduleNext();
  }

  return {
    async stop() {
      stopped = true;
      for (const handle of handles) clearTimeout(handle);
      handles.clear();
      await Promise.allSettled([...running]);
    },
  };
}

/** The allowed values of each of the six fields. */
export interface CronSchedule {
  readonly seconds: ReadonlySet<number>;
  readonly minutes: ReadonlySet<number>;
  readonly hours: ReadonlySet<number>;
  readonly days: ReadonlySet<number>;
  readonly months: ReadonlySet<number>;
  readonly weekdays: ReadonlySet<number>;
}

const FIELDS = [
  ['second', 0, 59],
  ['minute', 0, 59],
  ['hour', 0, 23],
  ['day', 1, 31],
  ['month', 1, 12],
  ['day of week', 0, 6],
] as const;

/**
 * NCRONTAB as the Functions host reads it, for numeric fields: `*`, `n`, `a-b`, `*\/n`, `a-b/n` and lists of
 * those (no month or day names).
 */
export function parseNcrontab(expression: string): CronSchedule {
  const parts = expression.trim().split(/\s+/);
  if (parts.length !== FIELDS.length) throw new Error(`schedule "${expression}" must have six fields (seconds first)`);
  const sets = FIELDS.map(([name, min, max], index) => {
    const values = new Set<number>();
    for (const item of (parts[index] as string).split(',')) {
      const match = /^(\*|(\d+)(?:-(\d+))?)(?:\/(\d+))?$/.exec(item);
      if (!match) throw new Error(`schedule "${expression}": cannot read ${name} "${item}"`);
      const from = match[1] === '*' ? min : Number(match[2]);
      const to =
        match[1] === '*' ? max : match[3] !== undefined ? Number(match[3]) : match[4] !== undefined ? max : from;
      const step = match[4] !== undefined ? Number(match[4]) : 1;
      if (from < min || to > max || from > to || step < 1)
        throw new Error(`schedule "${expression}": ${name} "${item}" is out of range`);
      for (let value = from; value <= to; value += step) values.add(value);
    }
    return values;
  });
  const [seconds, minutes, hours, days, months, weekdays] = sets as [
    Set<number>,
    Set<number>,
    Set<number>,
    Set<number>,
    Set<number>,
    Set<number>,
  ];
  return { seconds, minutes, hours, days, months, weekdays };
}

/** The first time strictly after `after` (UTC) that `schedule` names. Looks up to a year ahead, minute by minute. */
export function nextOccurrence(schedule: CronSchedule, after: Date): Date {
  const start = new Date(Math.floor(after.getTime() / 60_000) * 60_000);
  const secondsAscending = [...schedule.seconds].sort((a, b) => a - b);
  for (let minute = 0; minute <= 366 * 24 * 60; minute += 1) {
    const at = new Date(start.getTime() + minute * 60_000);
    if (
      !schedule.months.has(at.getUTCMonth() + 1) ||
      !schedule.days.has(at.getUTCDate()) ||
      !schedule.weekdays.has(at.getUTCDay()) ||
      !schedule.hours.has(at.getUTCHours()) ||
      !schedule.minutes.has(at.getUTCMinutes())
    ) {
      continue;
    }
    for (const second of secondsAscending) {
      const candidate = new Date(at.getTime() + second * 1_000);
      if (candidate.getTime() > after.getTime()) return candidate;
    }
  }
  throw new Error('the schedule names no time within a year');
}
