import type { Task } from './types.js';

/**
 * A standalone container's attachment to an attachable swarm network is kept as a task with no
 * service (swarmkit: a task whose runtime is a network attachment), on the container's node.
 * The allocator gives it its addresses like any task's; the dispatcher never sends it to an
 * executor; the NetworkView carries it so every node wires the container's address.
 */
export interface NetworkAttachmentSpec {
  ContainerID: string;
}

export function attachmentSpec(t: Task): NetworkAttachmentSpec | undefined {
  return (t.Spec as { NetworkAttachmentSpec?: NetworkAttachmentSpec }).NetworkAttachmentSpec;
}

export const isNetworkAttachment = (t: Task): boolean => !!attachmentSpec(t);
