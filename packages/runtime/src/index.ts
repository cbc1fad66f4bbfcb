/**
 * The shape every Shoal process shares: one logger, configuration from the environment, and a
 * supervisor that starts, readies and stops the process's components.
 */
export { createLogger, flushLogger, type LogFields, type Logger } from './logger.js';
export { idleComponent, untilAborted, type Component, type ComponentContext } from './component.js';
export { Supervisor, type SupervisorOptions, type SupervisorResult } from './supervisor.js';
export { runProcess, type ReadyMessage, type RunProcessOptions } from './process.js';
export {
  commonSettings,
  defineConfig,
  formatDurationMs,
  loadConfigOrExit,
  logLevels,
  parseDurationMs,
  setting,
  type ConfigDefinition,
  type LogLevel,
  type ParseResult,
  type Setting,
} from './config.js';
