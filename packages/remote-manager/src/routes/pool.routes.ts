import { randomUUID } from 'node:crypto';
import { appError, type ControlAck, type RunRecord } from '@rps/common';
import { z } from 'zod';
import type { ApiRouter } from '../http/api-router';
import { peerSummary } from '../services/machines.service';
import type { PoolViewStore } from '../stores/pool-view.store';
import type { QueueStatsStore } from '../stores/queue-stats.store';
import {
  idParamSchema,
  peerSummarySchema,
  queueStatsSchema,
  runDetailSchema,
  runIdParamSchema,
  runsQuerySchema,
  runSummarySchema,
} from './api.schemas';

/** Output bytes shown with a run. */
export const OUTPUT_TAIL_BYTES = 16 * 1024;

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

function runSummary(r: RunRecord) {
  return {
    runId: r.runId,
    state: r.state,
    peerId: r.peerId || null,
    taskId: Number.isFinite(r.taskId) ? r.taskId : null,
    createdAt: iso(r.createdAt),
    updatedAt: iso(r.updatedAt),
  };
}

const commandAnswer = z.object({
  peerId: z.string(),
  command: z.enum(['drain', 'undrain']),
  commandId: z.string(),
  acknowledged: z
    .boolean()
    .meta({ description: 'false: queued on the durable stream, the agent has not answered yet' }),
  ok: z.boolean().nullable(),
  message: z.string(),
});

export interface PoolRoutesDeps {
  pool: PoolViewStore;
  queues: QueueStatsStore;
  /** How long drain/undrain wait for the agent's acknowledgement before answering "queued". */
  ackWaitMs: number;
}

async function waitForAck(deps: PoolRoutesDeps, id: string): Promise<ControlAck | null> {
  const deadline = Date.now() + deps.ackWaitMs;
  for (;;) {
    const ack = await deps.pool.popAck(id);
    if (ack || Date.now() >= deadline) return ack;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Peers, drain/undrain, runs, queues. */
export function poolRoutes(api: ApiRouter, deps: PoolRoutesDeps): void {
  const { pool } = deps;
  api.route(
    {
      method: 'get',
      path: '/peers',
      summary: 'the peers registered by agents (stopped and removed ones until pruned)',
      tag: 'peers',
      response: z.object({ peers: z.array(peerSummarySchema) }),
    },
    async () => ({ peers: (await pool.peers()).map(peerSummary) }),
  );
  for (const command of ['drain', 'undrain'] as const) {
    api.route(
      {
        method: 'post',
        path: `/peers/:id/${command}`,
        summary:
          command === 'drain'
            ? 'the peer finishes its runs and takes no new ones (durable, kept across agent restarts)'
            : 'the peer takes runs again',
        tag: 'peers',
        params: idParamSchema,
        response: commandAnswer,
        errors: ['peer_not_found'],
      },
      async ({ params }) => {
        const peer = await pool.peer(params.id);
        if (!peer || !peer.state || peer.state === 'removed') {
          throw appError('peer_not_found', `no peer ${params.id} in the pool`);
        }
        const commandId = randomUUID();
        await pool.peerAdmin.send(params.id, { kind: command, id: commandId });
        const ack = await waitForAck(deps, commandId);
        return {
          peerId: params.id,
          command,
          commandId,
          acknowledged: ack !== null,
          ok: ack?.ok ?? null,
          message: ack?.message ?? 'queued; the agent carries it out when it reads its control stream',
        };
      },
    );
  }
  api
    .route(
      {
        method: 'get',
        path: '/runs',
        summary: 'the newest runs (by last change), optionally in one state',
        tag: 'runs',
        query: runsQuerySchema,
        response: z.object({ runs: z.array(runSummarySchema) }),
      },
      async ({ query }) => ({ runs: (await pool.runs(query)).map(runSummary) }),
    )
    .route(
      {
        method: 'get',
        path: '/runs/:id',
        summary: `one run with the last ${OUTPUT_TAIL_BYTES} bytes of its output`,
        tag: 'runs',
        params: runIdParamSchema,
        response: z.object({ run: runDetailSchema, outputTail: z.string() }),
        errors: ['run_not_found'],
      },
      async ({ params }) => {
        const view = await pool.run(params.id, OUTPUT_TAIL_BYTES);
        if (!view) throw appError('run_not_found', `run ${params.id} not found`);
        const r = view.record;
        return {
          run: {
            ...runSummary(r),
            execution: r.execution,
            jobId: r.jobId,
            startedAt: r.startedAt,
            finishedAt: r.finishedAt,
            error: r.error,
            reason: r.reason,
            phase: r.phase,
          },
          outputTail: view.outputTail,
        };
      },
    )
    .route(
      {
        method: 'get',
        path: '/queues',
        summary: 'job counts of the BullMQ queues',
        tag: 'queues',
        response: z.object({ queues: z.array(queueStatsSchema) }),
      },
      async () => ({ queues: await deps.queues.counts() }),
    );
}
