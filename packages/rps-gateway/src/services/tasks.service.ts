import { randomUUID } from 'node:crypto';
import type { Logger } from '@rps/common';
import type { ControlStore } from '../stores/control.store';
import type { PeerStore } from '../stores/peer.store';

/** What {@link TasksService} is built from. */
export interface TasksServiceDeps {
  peers: PeerStore;
  control: ControlStore;
  logger: Logger;
}

/** `DELETE /rps/task/:id`: every peer that may hold the task's build must hear of it. */
export class TasksService {
  constructor(private readonly deps: TasksServiceDeps) {}

  /** Queues the deletion on every peer's durable stream; returns how many peers got it. */
  async delete(taskId: number): Promise<number> {
    const peerIds = await this.deps.peers.listNotRemoved();
    await this.deps.control.sendToEach(
      peerIds.map((peerId) => ({ peerId, command: { kind: 'deleteTask', id: randomUUID(), taskId } })),
    );
    this.deps.logger.info({ taskId, peers: peerIds.length }, 'task deletion sent');
    return peerIds.length;
  }
}
