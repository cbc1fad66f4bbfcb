import { describe, expect, it } from 'vitest';
import { ReplyCache } from '../src/http/reply-cache.js';

describe('ReplyCache', () => {
  it('serializes an answer once per store version, and again once the store moved on', () => {
    const cache = new ReplyCache();
    let computed = 0;
    const answer = () => ({ computed: ++computed });
    expect(cache.serialized('filters=a', 7n, answer)).toBe('{"computed":1}\n');
    expect(cache.serialized('filters=a', 7n, answer)).toBe('{"computed":1}\n');
    expect(cache.serialized('filters=a', 8n, answer)).toBe('{"computed":2}\n');
    expect(cache.serialized('filters=b', 8n, answer)).toBe('{"computed":3}\n');
  });

  it('forgets the least recently used answer when full', () => {
    const cache = new ReplyCache(2);
    let computed = 0;
    const answer = () => ++computed;
    cache.serialized('a', 1n, answer);
    cache.serialized('b', 1n, answer);
    cache.serialized('a', 1n, answer);
    cache.serialized('c', 1n, answer);
    // b was least recently used and went; a stayed.
    expect(cache.serialized('a', 1n, answer)).toBe('1\n');
    expect(cache.serialized('b', 1n, answer)).toBe('4\n');
  });
});
