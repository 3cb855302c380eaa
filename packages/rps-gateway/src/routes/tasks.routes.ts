import { Router } from 'express';
import type { TasksService } from '../services/tasks.service';
import { parseIdParam } from './params';

/** `DELETE /rps/task/:task_id`: fan out to every peer, never wait for one. */
export function tasksRoutes({ tasks }: { tasks: TasksService }): Router {
  const router = Router();
  router.delete('/rps/task/:task_id', async (req, res) => {
    const taskId = parseIdParam('task_id', req.params.task_id);
    const peers = await tasks.delete(taskId);
    res.status(200).json({ peers });
  });
  return router;
}
