// The dashboard's pure helpers: API answers in, table models out. No DOM, no
// fetch, so src/dashboard/view.test.ts runs this very file in a VM context.
// A model row is a list of cells {text, tone?, title?}; dashboard.js renders
// every text with textContent (never as HTML) and maps a tone to a class from
// TONES only, so names, ids and states from users cannot inject markup.
(function (root) {
  'use strict';

  /** Class suffixes a cell may get (state-<tone>); anything else is 'other'. */
  var TONES = ['ok', 'busy', 'waiting', 'bad', 'muted', 'other'];

  var STATE_TONES = {
    // runs (common/src/runs/run-state.ts)
    queued: 'waiting',
    dispatched: 'busy',
    running: 'busy',
    succeeded: 'ok',
    failed: 'bad',
    stopped: 'muted',
    lost: 'bad',
    // machines and peers (common/src/contracts/peer.contract.ts); stopped and lost as above
    provisioned: 'waiting',
    active: 'ok',
    draining: 'busy',
    removing: 'busy',
    removed: 'muted',
  };

  function text(value) {
    if (value === null || value === undefined || value === '') return '–';
    return String(value);
  }

  /** The tone of a state: a fixed word from TONES, whatever the input. */
  function stateTone(state) {
    if (typeof state !== 'string') return 'other';
    return Object.prototype.hasOwnProperty.call(STATE_TONES, state) ? STATE_TONES[state] : 'other';
  }

  /** "running/capacity" of a peer ("1/2"), "–/2" when nothing runs there yet, "–" without a capacity. */
  function formatLoad(running, capacity) {
    var cap = typeof capacity === 'number' && isFinite(capacity) ? capacity : null;
    var run = typeof running === 'number' && isFinite(running) ? running : null;
    if (cap === null && run === null) return '–';
    return (run === null ? '–' : String(run)) + '/' + (cap === null ? '–' : String(cap));
  }

  /** How long ago an ISO time was, for people: "now", "12 s ago", "3 min ago", "2 h ago", "4 d ago". */
  function formatAge(iso, nowMs) {
    if (typeof iso !== 'string' || iso === '') return '–';
    var t = Date.parse(iso);
    if (!isFinite(t)) return '–';
    var s = Math.round((nowMs - t) / 1000);
    if (s < 1) return 'now';
    if (s < 120) return s + ' s ago';
    if (s < 7200) return Math.round(s / 60) + ' min ago';
    if (s < 172800) return Math.round(s / 3600) + ' h ago';
    return Math.round(s / 86400) + ' d ago';
  }

  function state(value) {
    return { text: text(value), tone: stateTone(value) };
  }

  function when(iso, nowMs) {
    return { text: formatAge(iso, nowMs), title: typeof iso === 'string' ? iso : '' };
  }

  function peersById(peers) {
    var byId = {};
    (peers || []).forEach(function (p) {
      if (p && typeof p.id === 'string') byId[p.id] = p;
    });
    return byId;
  }

  /** Machines of the registry: name, type, address, state, load, last heartbeat, peer. */
  function machineRows(machines, peers, nowMs) {
    var byId = peersById(peers);
    return (machines || []).map(function (m) {
      var peer = m.peer || (m.peer === undefined ? byId[m.id] : null) || null;
      var capacity = peer && typeof peer.capacity === 'number' ? peer.capacity : m.capacity;
      return {
        key: String(m.id),
        cells: [
          { text: text(m.name), title: text(m.description) },
          { text: text(m.type) },
          { text: text(m.dnsname ? m.dnsname + ' (' + m.address + ')' : m.address) },
          state(m.state),
          { text: formatLoad(peer ? peer.running : null, capacity) },
          when(m.lastHeartbeat || (peer && peer.lastHeartbeat) || null, nowMs),
          { text: text(peer ? peer.id : null) },
        ],
      };
    });
  }

  /** Peers the agents registered (with a machine or not): id, state, address, load, heartbeat, drained. */
  function peerRows(peers, nowMs) {
    return (peers || [])
      .slice()
      .sort(function (a, b) {
        return String(a.id) < String(b.id) ? -1 : String(a.id) > String(b.id) ? 1 : 0;
      })
      .map(function (p) {
        return {
          key: String(p.id),
          cells: [
            { text: text(p.id) },
            state(p.drained && p.state === 'active' ? 'draining' : p.state),
            { text: text(p.address) },
            { text: formatLoad(p.running, p.capacity) },
            when(p.lastHeartbeat, nowMs),
            { text: p.drained ? 'yes' : 'no', tone: p.drained ? 'busy' : 'muted' },
          ],
        };
      });
  }

  /** Runs, newest change first: run id, state, peer, task, created, updated. */
  function runRows(runs, nowMs) {
    return (runs || [])
      .slice()
      .sort(function (a, b) {
        var x = Date.parse(a.updatedAt) || 0;
        var y = Date.parse(b.updatedAt) || 0;
        return y - x || Number(b.runId) - Number(a.runId);
      })
      .map(function (r) {
        return {
          key: String(r.runId),
          cells: [
            { text: text(r.runId) },
            state(r.state),
            { text: text(r.peerId) },
            { text: text(r.taskId) },
            when(r.createdAt, nowMs),
            when(r.updatedAt, nowMs),
          ],
        };
      });
  }

  function count(n) {
    return typeof n === 'number' && isFinite(n) ? String(n) : '–';
  }

  /** Queue depths: name, waiting, prioritized, active, delayed, completed, failed, paused (yes/no). */
  function queueRows(queues) {
    return (queues || []).map(function (q) {
      return {
        key: String(q.name),
        cells: [
          { text: text(q.name) },
          { text: count(q.waiting), tone: q.waiting > 0 ? 'waiting' : undefined },
          { text: count(q.prioritized) },
          { text: count(q.active), tone: q.active > 0 ? 'busy' : undefined },
          { text: count(q.delayed) },
          { text: count(q.completed) },
          { text: count(q.failed), tone: q.failed > 0 ? 'bad' : undefined },
          q.paused === true ? { text: 'yes', tone: 'busy' } : { text: q.paused === false ? 'no' : '–' },
        ],
      };
    });
  }

  /** The message of an RPS error answer ({error: message, code}; also {error: {code, message}}), or the status. */
  function errorMessage(status, body) {
    var e = body && body.error;
    var code = body && typeof body.code === 'string' ? body.code : null;
    if (e && typeof e === 'object' && typeof e.message === 'string') {
      code = typeof e.code === 'string' ? e.code : code;
      e = e.message;
    }
    if (typeof e === 'string') return (code ? code + ': ' : '') + e;
    return 'HTTP ' + status;
  }

  root.RpsView = {
    TONES: TONES,
    stateTone: stateTone,
    formatLoad: formatLoad,
    formatAge: formatAge,
    machineRows: machineRows,
    peerRows: peerRows,
    runRows: runRows,
    queueRows: queueRows,
    errorMessage: errorMessage,
  };
})(globalThis);
