import {
  UpdateConfig,
  UpdateConfig_FailureAction,
  UpdateConfig_UpdateOrder,
  UpdateStatus_UpdateState,
  type Service,
} from '@shoal/proto';
import { durationOfMs, msOfDuration } from '@shoal/store-client';

/**
 * What a service gets when its spec carries no update (or rollback) config: swarmkit's
 * `defaults.Service.Update` and `.Rollback`, which are the same. Note parallelism 1, not the "all at
 * once" an explicit config with parallelism 0 asks for.
 */
export const defaultUpdateConfig: Readonly<UpdateConfig> = Object.freeze(
  UpdateConfig.fromPartial({
    parallelism: 1n,
    delay: durationOfMs(0),
    failureAction: UpdateConfig_FailureAction.PAUSE,
    monitor: durationOfMs(5_000),
    maxFailureRatio: 0,
    order: UpdateConfig_UpdateOrder.STOP_FIRST,
  }),
);

/** An update config resolved into the numbers and choices one rollout works with. */
export interface RolloutPolicy {
  /** Slots replaced at once; 0 means every dirty slot at once. */
  readonly parallelism: number;
  /** How long each worker waits after a slot before taking the next one. */
  readonly delayMs: number;
  readonly failureAction: UpdateConfig_FailureAction;
  /** How long after a replacement starts running its failure still counts against the rollout. */
  readonly monitorMs: number;
  /** Failures may reach this fraction of the dirty slots; one more applies the failure action. */
  readonly maxFailureRatio: number;
  readonly order: UpdateConfig_UpdateOrder;
}

const knownFailureActions = new Set([UpdateConfig_FailureAction.PAUSE, UpdateConfig_FailureAction.CONTINUE, UpdateConfig_FailureAction.ROLLBACK]);

/** True while the service's current rollout is a rollback (the api's manual one or the updater's own). */
export function isRollingBack(service: Service): boolean {
  return service.updateStatus?.state === UpdateStatus_UpdateState.ROLLBACK_STARTED;
}

/**
 * The policy of the rollout `service` is due: its rollback config while rolling back, its update
 * config otherwise, each falling back to {@link defaultUpdateConfig} when absent. A config without a
 * monitor period gets the default one, and values the proto does not define (a newer client's enum
 * value) fall back to the default behaviour rather than to something undefined.
 */
export function rolloutPolicyOf(service: Service): RolloutPolicy {
  const config = (isRollingBack(service) ? service.spec?.rollback : service.spec?.update) ?? defaultUpdateConfig;
  const monitor = config.monitor ?? defaultUpdateConfig.monitor!;
  return {
    parallelism: Number(config.parallelism),
    delayMs: config.delay === undefined ? 0 : msOfDuration(config.delay),
    failureAction: knownFailureActions.has(config.failureAction) ? config.failureAction : UpdateConfig_FailureAction.PAUSE,
    monitorMs: msOfDuration(monitor),
    maxFailureRatio: config.maxFailureRatio,
    order: config.order === UpdateConfig_UpdateOrder.START_FIRST ? UpdateConfig_UpdateOrder.START_FIRST : UpdateConfig_UpdateOrder.STOP_FIRST,
  };
}

/**
 * How long to keep watching for failures once every slot is done: the monitor period, or the delay
 * plus a second when the delay is at least as long (swarmkit: otherwise the watch would end before the
 * last worker finished its delay).
 */
export function finalMonitorMs(policy: RolloutPolicy): number {
  return policy.delayMs >= policy.monitorMs ? policy.delayMs + 1_000 : policy.monitorMs;
}

/**
 * Whether `failures` out of `dirtySlots` exceed the policy's ratio. Compared in single precision, as
 * swarmkit does with the proto's float, so that a ratio such as 0.7 (stored as 0.69999998…) is met,
 * not exceeded, by 7 failures out of 10.
 */
export function exceedsFailureRatio(failures: number, dirtySlots: number, policy: RolloutPolicy): boolean {
  return Math.fround(failures / dirtySlots) > Math.fround(policy.maxFailureRatio);
}
