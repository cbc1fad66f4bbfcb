import * as grpc from '@grpc/grpc-js';
import { ErrorCode, ShoalError } from '@shoal/errors';
import { describe, expect, it } from 'vitest';
import { ERROR_CODE_METADATA_KEY, ERROR_DETAILS_METADATA_KEY, fromGrpcError, grpcStatusByCode, toGrpcError } from '../src/index.js';

/** A gRPC error as a client would receive it from a server that is not Shoal's (no trailers). */
function foreignError(code: grpc.status, details: string, metadata = new grpc.Metadata()): grpc.ServiceError {
  return Object.assign(new Error(`${code} ${details}`), { code, details, metadata });
}

describe('gRPC status mapping', () => {
  it.each(Object.values(ErrorCode))('sends %s as its gRPC status and rebuilds the same code on the client', (code) => {
    const wire = toGrpcError(new ShoalError(code, `failed with ${code}`, { details: { objectId: 'o1' } }));
    expect(wire.code).toBe(grpcStatusByCode[code]);
    expect(fromGrpcError(wire)).toMatchObject({ code, message: `failed with ${code}`, details: { objectId: 'o1' } });
  });

  it('sends codes that share a status under the status gRPC clients expect', () => {
    expect(grpcStatusByCode.CONFLICT).toBe(grpc.status.ABORTED);
    expect(grpcStatusByCode.NAME_CONFLICT).toBe(grpc.status.ALREADY_EXISTS);
    expect(grpcStatusByCode.ALREADY_EXISTS).toBe(grpc.status.ALREADY_EXISTS);
    expect(grpcStatusByCode.COMPACTED).toBe(grpc.status.OUT_OF_RANGE);
  });

  it('hides the message of an error that is not a ShoalError', () => {
    const wire = toGrpcError(new TypeError("Cannot read properties of undefined (reading 'spec')"));
    expect(wire).toMatchObject({ code: grpc.status.INTERNAL, details: 'internal error' });
    expect(wire.metadata.get(ERROR_CODE_METADATA_KEY)).toEqual(['INTERNAL']);
  });

  it.each([
    [grpc.status.UNAVAILABLE, ErrorCode.Unavailable],
    [grpc.status.ABORTED, ErrorCode.Conflict],
    [grpc.status.DEADLINE_EXCEEDED, ErrorCode.DeadlineExceeded],
    [grpc.status.UNKNOWN, ErrorCode.Internal],
    [grpc.status.DATA_LOSS, ErrorCode.Internal],
  ])('maps status %s without Shoal trailers to %s', (status, code) => {
    expect(fromGrpcError(foreignError(status, 'x')).code).toBe(code);
  });

  it('ignores details it cannot decode and keeps the code', () => {
    const metadata = new grpc.Metadata();
    metadata.set(ERROR_CODE_METADATA_KEY, 'NOT_FOUND');
    metadata.set(ERROR_DETAILS_METADATA_KEY, Buffer.from('{"version":{"$bigint":"12x"}}'));
    expect(fromGrpcError(foreignError(grpc.status.NOT_FOUND, 'gone', metadata))).toMatchObject({ code: 'NOT_FOUND', details: {} });
  });

  it('ignores a code trailer that is not a Shoal code', () => {
    const metadata = new grpc.Metadata();
    metadata.set(ERROR_CODE_METADATA_KEY, 'TEAPOT');
    expect(fromGrpcError(foreignError(grpc.status.PERMISSION_DENIED, 'no', metadata)).code).toBe(ErrorCode.PermissionDenied);
  });
});
