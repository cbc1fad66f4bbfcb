/** The encoder every generated message type has. */
interface MessageEncoder<T> {
  encode(message: T): { finish(): Uint8Array };
}

/** Whether two messages are the same, as their protobuf encodings say (undefined equals only undefined). */
export function sameEncoding<T>(codec: MessageEncoder<T>, a: T | undefined, b: T | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return Buffer.from(codec.encode(a).finish()).equals(codec.encode(b).finish());
}
