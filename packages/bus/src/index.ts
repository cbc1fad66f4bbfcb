/** Shoal's NATS edge: connections that drain on close, run under the supervisor, and the subject names. */
export { BusComponent, busComponent, connectBus, type BusComponentOptions, type BusConnection, type BusOptions } from './bus.js';
export { subjects, type LogPublication, type LogSubscription, type LogSubscriptionEnd } from './subjects.js';
