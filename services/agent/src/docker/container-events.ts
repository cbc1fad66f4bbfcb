import { createInterface } from 'node:readline';
import type Dockerode from 'dockerode';
import { callEngine, engineError } from './engine.js';

/** The container events a controller acts on; the engine's action strings. */
export const ContainerAction = {
  Start: 'start',
  Die: 'die',
  Destroy: 'destroy',
  Healthy: 'health_status: healthy',
  Unhealthy: 'health_status: unhealthy',
} as const;

type ContainerActionName = (typeof ContainerAction)[keyof typeof ContainerAction];

/** One event about a task's container; a `die` carries the process's exit code. */
export type ContainerEvent =
  | { readonly action: typeof ContainerAction.Die; readonly exitCode: number }
  | { readonly action: Exclude<ContainerActionName, typeof ContainerAction.Die> };

const actionNames = new Set<string>(Object.values(ContainerAction));

/** The engine's event filter for one container's lifecycle: by name or ID, without the exec noise of healthchecks. */
function lifecycleFilter(container: string): Dockerode.GetEventsOptions['filters'] {
  const event = [ContainerAction.Start, ContainerAction.Die, ContainerAction.Destroy, 'health_status'];
  return { type: ['container'], container: [container], event };
}

/**
 * A live subscription to one container's lifecycle events. The engine has registered it once
 * {@link ContainerEventStream.open} resolves, so a caller that inspects the container after opening and
 * then reads events misses no change in between.
 */
export class ContainerEventStream {
  private constructor(
    private readonly lines: AsyncIterator<string>,
    private readonly subscription: AbortController,
    private readonly signal: AbortSignal,
    private readonly container: string,
  ) {}

  /** Subscribes to `container`'s events (a name or an ID) until {@link close} or `signal` aborts. */
  static async open(docker: Dockerode, container: string, signal: AbortSignal): Promise<ContainerEventStream> {
    const subscription = new AbortController();
    const options: Dockerode.GetEventsOptions & { abortSignal: AbortSignal } = {
      filters: lifecycleFilter(container),
      abortSignal: AbortSignal.any([signal, subscription.signal]),
    };
    const stream = await callEngine(docker.getEvents(options), signal);
    const lines = createInterface({ input: stream, crlfDelay: Infinity })[Symbol.asyncIterator]();
    return new ContainerEventStream(lines, subscription, signal, container);
  }

  /** The next event, or `undefined` once the engine ends the stream (dockerd stopping). */
  async next(): Promise<ContainerEvent | undefined> {
    for (;;) {
      let result: IteratorResult<string>;
      try {
        result = await this.lines.next();
      } catch (err) {
        throw engineError(err, this.signal);
      }
      if (result.done === true) return undefined;
      const event = parseEvent(result.value, this.container);
      if (event !== undefined) return event;
    }
  }

  /** Ends the subscription. */
  close(): void {
    this.subscription.abort();
  }
}

/**
 * The exit code of the container's last `die` that the engine still remembers (it keeps a bounded
 * history of recent events), for a container that is gone by the time anyone asks.
 */
export async function rememberedExitCode(docker: Dockerode, container: string, signal: AbortSignal): Promise<number | undefined> {
  // `since` at the epoch's first second asks for the whole history, `until` now (in seconds, with a
  // fraction) makes the stream end right after it.
  const options: Dockerode.GetEventsOptions & { abortSignal: AbortSignal } = {
    since: 1,
    until: Date.now() / 1000,
    filters: lifecycleFilter(container),
    abortSignal: signal,
  };
  const stream = await callEngine(docker.getEvents(options), signal);
  let exitCode: number | undefined;
  try {
    for await (const line of createInterface({ input: stream, crlfDelay: Infinity })) {
      const event = parseEvent(line, container);
      if (event?.action === ContainerAction.Die) exitCode = event.exitCode;
    }
  } catch (err) {
    throw engineError(err, signal);
  }
  return exitCode;
}

interface EngineEvent {
  Type?: string;
  Action?: string;
  Actor?: { ID?: string; Attributes?: Record<string, string> };
}

function parseEvent(line: string, container: string): ContainerEvent | undefined {
  if (line.trim() === '') return undefined;
  const event = JSON.parse(line) as EngineEvent;
  const actor = event.Actor;
  // The engine matches the container filter by prefix; keep only this container's own events.
  if (event.Type !== 'container' || (actor?.ID !== container && actor?.Attributes?.['name'] !== container)) return undefined;
  const action = event.Action;
  // The engine always says how the process exited; -1 stands for "it did not say", as in Docker's own API.
  if (action === ContainerAction.Die) return { action, exitCode: Number(actor.Attributes?.['exitCode'] ?? -1) };
  return action !== undefined && isOtherAction(action) ? { action } : undefined;
}

function isOtherAction(action: string): action is Exclude<ContainerActionName, typeof ContainerAction.Die> {
  return actionNames.has(action) && action !== ContainerAction.Die;
}
