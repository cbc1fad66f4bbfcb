import type { ShoalError } from '@shoal/errors';
import { toGrpcError, type RpcServer } from '@shoal/rpc';

type ServiceDefinition = Parameters<RpcServer['addService']>[0];
type ServiceImplementation = Parameters<RpcServer['addService']>[1];
type Handler = (call: { emit(event: 'error', err: unknown): boolean }, callback?: (err: unknown) => void) => void;

/**
 * Wraps every handler of a service so that, while `refusal()` returns an error (the replica is LOCKED,
 * starting, removed or stopping), calls are answered with it and never reach the handler. The Store
 * API's handlers read the local store directly for stale reads and watches, so refusing at the door is
 * the only way a locked replica can be sure to serve nothing.
 */
export function refusingWhile(
  definition: ServiceDefinition,
  implementation: ServiceImplementation,
  refusal: () => ShoalError | undefined,
): ServiceImplementation {
  const gated: ServiceImplementation = {};
  for (const [name, method] of Object.entries(definition)) {
    const handler = implementation[name] as unknown as Handler;
    const refusingHandler: Handler = (call, callback) => {
      const refused = refusal();
      if (refused === undefined) handler(call, callback);
      // Server streams answer with an error event; unary and client-stream calls through their callback.
      else if (method.responseStream) call.emit('error', toGrpcError(refused));
      else callback?.(toGrpcError(refused));
    };
    gated[name] = refusingHandler as unknown as ServiceImplementation[string];
  }
  return gated;
}
