import { errors } from '@shoal/errors';

/** The protobuf message classes of `@shoal/proto` that records embed. */
export interface MessageCodec<T> {
  encode(message: T): { finish(): Uint8Array };
  decode(input: Uint8Array): T;
}

/** Builds the little-endian fixed-layout parts of the on-disk formats. */
export class ByteWriter {
  private readonly parts: Uint8Array[] = [];

  u8(value: number): this {
    this.parts.push(Uint8Array.of(value));
    return this;
  }

  u32(value: number): this {
    const bytes = Buffer.allocUnsafe(4);
    bytes.writeUInt32LE(value);
    this.parts.push(bytes);
    return this;
  }

  u64(value: bigint): this {
    const bytes = Buffer.allocUnsafe(8);
    bytes.writeBigUInt64LE(value);
    this.parts.push(bytes);
    return this;
  }

  /** Raw bytes, no length: for fixed-size fields. */
  raw(bytes: Uint8Array): this {
    this.parts.push(bytes);
    return this;
  }

  /** Length-prefixed bytes. */
  bytes(bytes: Uint8Array): this {
    return this.u32(bytes.length).raw(bytes);
  }

  /** A length-prefixed protobuf message. */
  message<T>(codec: MessageCodec<T>, message: T): this {
    return this.bytes(codec.encode(message).finish());
  }

  /** A presence byte, then the message if present. */
  optionalMessage<T>(codec: MessageCodec<T>, message: T | undefined): this {
    this.u8(message === undefined ? 0 : 1);
    return message === undefined ? this : this.message(codec, message);
  }

  finish(): Buffer {
    return Buffer.concat(this.parts);
  }
}

/**
 * Reads what {@link ByteWriter} wrote. Running past the end or leaving bytes over throws INTERNAL:
 * the bytes were authenticated before they got here, so a layout mismatch is a format bug or a
 * foreign file, never a torn write, and must not be papered over.
 */
export class ByteReader {
  private offset = 0;

  constructor(private readonly data: Buffer) {}

  u8(): number {
    return this.take(1).readUInt8();
  }

  u32(): number {
    return this.take(4).readUInt32LE();
  }

  u64(): bigint {
    return this.take(8).readBigUInt64LE();
  }

  raw(length: number): Buffer {
    return this.take(length);
  }

  bytes(): Buffer {
    return this.take(this.u32());
  }

  message<T>(codec: MessageCodec<T>): T {
    return codec.decode(this.bytes());
  }

  optionalMessage<T>(codec: MessageCodec<T>): T | undefined {
    return this.u8() === 0 ? undefined : this.message(codec);
  }

  /** Asserts every byte was consumed. */
  end(): void {
    if (this.offset !== this.data.length) {
      throw errors.internal(`malformed record: ${this.data.length - this.offset} unexpected trailing bytes`);
    }
  }

  private take(length: number): Buffer {
    if (this.offset + length > this.data.length) {
      throw errors.internal(`malformed record: a field runs ${this.offset + length - this.data.length} bytes past its end`);
    }
    const slice = this.data.subarray(this.offset, this.offset + length);
    this.offset += length;
    return slice;
  }
}
