/**
 * NATS subjects Shoal publishes on, named `shoal.v1.<producer>.<noun>[.<id>]`. NATS carries only
 * signals that may be lost (nudges, membership, log streams): whoever misses one re-reads the store.
 */
export const subjects = {
  /**
   * Published by raft-store after it applies a commit, so that watchers re-read sooner than their
   * next poll. A hint only: the payload may be empty and the store is the truth.
   */
  storeCommit: 'shoal.v1.store.commit',
} as const;
