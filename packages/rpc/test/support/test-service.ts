import type * as grpc from '@grpc/grpc-js';

/** A hand-written service for the tests, with JSON on the wire, so they need no generated code. */
export interface EchoRequest {
  text: string;
}
export interface EchoResponse {
  text: string;
  peer?: { cn: string; ou: string; o: string };
}
export interface CountRequest {
  upTo: number;
}
export interface CountResponse {
  n: number;
}

const serialize = (value: unknown): Buffer => Buffer.from(JSON.stringify(value), 'utf8');
const deserialize = (bytes: Buffer): never => JSON.parse(bytes.toString('utf8')) as never;

function method<Req, Res>(name: string, responseStream: boolean): grpc.MethodDefinition<Req, Res> {
  return {
    path: `/shoal.test.v1.Test/${name}`,
    requestStream: false,
    responseStream,
    requestSerialize: serialize,
    requestDeserialize: deserialize,
    responseSerialize: serialize,
    responseDeserialize: deserialize,
  };
}

export const TestService = {
  echo: method<EchoRequest, EchoResponse>('Echo', false),
  managersOnly: method<EchoRequest, EchoResponse>('ManagersOnly', false),
  count: method<CountRequest, CountResponse>('Count', true),
};
