import fs from 'node:fs';
import path from 'node:path';
import vm from 'node:vm';
import { STATIC_DIR } from './dashboard.router';

// The page's own helpers (static/view.js), run as the browser runs them: a
// classic script that sets globalThis.RpsView, here in a VM context.
interface Cell {
  text: string;
  tone?: string;
  title?: string;
}
interface Row {
  key: string;
  cells: Cell[];
}
interface RpsView {
  TONES: string[];
  stateTone(state: unknown): string;
  formatLoad(running: unknown, capacity: unknown): string;
  formatAge(iso: unknown, nowMs: number): string;
  machineRows(machines: unknown[], peers: unknown[], nowMs: number): Row[];
  peerRows(peers: unknown[], nowMs: number): Row[];
  runRows(runs: unknown[], nowMs: number): Row[];
  queueRows(queues: unknown[]): Row[];
  errorMessage(status: number, body: unknown): string;
}

function loadView(): RpsView {
  const context: { RpsView?: RpsView } = {};
  vm.createContext(context);
  vm.runInContext(fs.readFileSync(path.join(STATIC_DIR, 'view.js'), 'utf8'), context);
  return context.RpsView!;
}

const NOW = Date.parse('2026-12-02T01:00:00.000Z');
const texts = (rows: Row[]) => rows.map((r) => r.cells.map((c) => c.text));

describe('dashboard view helpers (static/view.js)', () => {
  const view = loadView();

  it('when a state is unknown or hostile then its tone is still one of the fixed tones', () => {
    expect(view.stateTone('succeeded')).toBe('ok');
    expect(view.stateTone('queued')).toBe('waiting');
    expect(view.stateTone('running')).toBe('busy');
    expect(view.stateTone('lost')).toBe('bad');
    for (const hostile of ['x" onmouseover="alert(1)', '__proto__', 'constructor', 42, null, undefined]) {
      expect(view.TONES).toContain(view.stateTone(hostile));
      expect(view.stateTone(hostile)).toBe('other');
    }
  });

  it('when loads and ages are formatted then missing values show a dash', () => {
    expect(view.formatLoad(1, 2)).toBe('1/2');
    expect(view.formatLoad(null, 2)).toBe('–/2');
    expect(view.formatLoad(undefined, null)).toBe('–');
    expect(view.formatAge('2026-12-02T00:59:55.000Z', NOW)).toBe('5 s ago');
    expect(view.formatAge('2026-12-02T00:55:00.000Z', NOW)).toBe('5 min ago');
    expect(view.formatAge('2026-12-01T21:00:00.000Z', NOW)).toBe('4 h ago');
    expect(view.formatAge('2026-12-02T01:00:00.400Z', NOW)).toBe('now');
    expect(view.formatAge(null, NOW)).toBe('–');
    expect(view.formatAge('yesterday', NOW)).toBe('–');
  });

  it('when machines are listed then each shows its peer load and heartbeat, names kept as plain text', () => {
    const name = '<img src=x onerror="alert(1)">';
    const rows = view.machineRows(
      [
        {
          id: 'm1',
          name,
          description: 'd',
          address: '10.0.0.5',
          dnsname: 'peer.example',
          type: 'manual',
          state: 'active',
          capacity: 4,
          lastHeartbeat: '2026-12-02T00:59:58.000Z',
          peer: { id: 'm1', state: 'active', capacity: 4, running: 3, lastHeartbeat: null, drained: false },
        },
        {
          id: 'm2',
          name: 'b',
          address: '10.0.0.6',
          type: 'rjr',
          state: 'provisioned',
          capacity: null,
          peer: null,
        },
      ],
      [],
      NOW,
    );
    expect(texts(rows)).toEqual([
      [name, 'manual', 'peer.example (10.0.0.5)', 'active', '3/4', '2 s ago', 'm1'],
      ['b', 'rjr', '10.0.0.6', 'provisioned', '–', '–', '–'],
    ]);
    expect(rows[0]!.cells[3]!.tone).toBe('ok');
  });

  it('when peers are listed then they are sorted by id and a drained active peer shows as draining', () => {
    const rows = view.peerRows(
      [
        {
          id: 'peer-2',
          state: 'active',
          address: '127.0.0.1',
          capacity: 2,
          running: 0,
          lastHeartbeat: null,
          drained: true,
        },
        {
          id: 'peer-1',
          state: 'lost',
          address: '127.0.0.1',
          capacity: 1,
          running: 1,
          lastHeartbeat: null,
          drained: false,
        },
      ],
      NOW,
    );
    expect(texts(rows)).toEqual([
      ['peer-1', 'lost', '127.0.0.1', '1/1', '–', 'no'],
      ['peer-2', 'draining', '127.0.0.1', '0/2', '–', 'yes'],
    ]);
  });

  it('when runs are listed then the latest change comes first with state and peer', () => {
    const rows = view.runRows(
      [
        {
          runId: 41,
          state: 'succeeded',
          peerId: 'peer-1',
          taskId: 7,
          createdAt: '2026-12-02T00:50:00.000Z',
          updatedAt: '2026-12-02T00:51:00.000Z',
        },
        {
          runId: 42,
          state: 'queued',
          peerId: null,
          taskId: 7,
          createdAt: '2026-12-02T00:59:00.000Z',
          updatedAt: '2026-12-02T00:59:00.000Z',
        },
      ],
      NOW,
    );
    expect(rows.map((r) => r.key)).toEqual(['42', '41']);
    expect(texts(rows)[0]).toEqual(['42', 'queued', '–', '7', '60 s ago', '60 s ago']);
    expect(rows[1]!.cells[1]).toEqual({ text: 'succeeded', tone: 'ok' });
  });

  it('when queue depths are listed then non-zero waiting and failed counts and a paused queue are marked', () => {
    const [row, paused] = view.queueRows([
      {
        name: 'runs',
        waiting: 2,
        prioritized: 0,
        active: 0,
        delayed: 0,
        completed: 5,
        failed: 1,
        paused: false,
      },
      {
        name: 'pushes',
        waiting: 0,
        prioritized: 0,
        active: 0,
        delayed: 0,
        completed: 0,
        failed: 0,
        paused: true,
      },
    ]);
    expect(row!.cells.map((c) => c.text)).toEqual(['runs', '2', '0', '0', '0', '5', '1', 'no']);
    expect(row!.cells[1]!.tone).toBe('waiting');
    expect(row!.cells[3]!.tone).toBeUndefined();
    expect(row!.cells[6]!.tone).toBe('bad');
    expect(paused!.cells[7]).toEqual({ text: 'yes', tone: 'busy' });
  });

  it('when the API answers an error then its code and message are shown, else the status', () => {
    expect(view.errorMessage(403, { error: { code: 'forbidden', message: 'wrong token' } })).toBe(
      'forbidden: wrong token',
    );
    expect(view.errorMessage(401, { error: 'a bearer token is required', code: 'unauthorized' })).toBe(
      'unauthorized: a bearer token is required',
    );
    expect(view.errorMessage(502, null)).toBe('HTTP 502');
    expect(view.errorMessage(500, { error: { nested: true } })).toBe('HTTP 500');
  });
});
