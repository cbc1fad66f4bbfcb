import type { Commit } from '@shoal/store';

export { network, node, secret, service, take, task } from '@shoal/store/testing';

/** What a commit says happened, compactly: `["create task t1", …]`. */
export function summary(commit: Commit): string[] {
  return commit.events.map((event) => `${event.action} ${event.kind} ${event.object.id}`);
}
