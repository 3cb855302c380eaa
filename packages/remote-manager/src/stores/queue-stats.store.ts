import type { Queue } from 'bullmq';

/** The job counts of one BullMQ queue. */
export interface QueueCounts {
  name: string;
  waiting: number;
  active: number;
  delayed: number;
  completed: number;
  failed: number;
  prioritized: number;
  /** The queue is paused (BullMQ 5 has no per-job paused state: its jobs count as waiting). */
  paused: boolean;
}

const STATES = ['waiting', 'active', 'delayed', 'completed', 'failed', 'prioritized'] as const;

/** Queue depths of the pool's BullMQ queues (BullMQ's getJobCounts). */
export class QueueStatsStore {
  constructor(private readonly queues: readonly Queue[]) {}

  async counts(): Promise<QueueCounts[]> {
    return Promise.all(
      this.queues.map(async (queue) => {
        const [counts, paused] = await Promise.all([queue.getJobCounts(...STATES), queue.isPaused()]);
        return {
          name: queue.name,
          waiting: counts.waiting ?? 0,
          active: counts.active ?? 0,
          delayed: counts.delayed ?? 0,
          completed: counts.completed ?? 0,
          failed: counts.failed ?? 0,
          prioritized: counts.prioritized ?? 0,
          paused,
        };
      }),
    );
  }
}
