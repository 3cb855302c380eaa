// The dashboard page: asks for the manager's token, keeps it in this tab's
// sessionStorage, reads the admin API with it as a bearer header every second
// and renders the answers through view.js's models (text only, never HTML).
// The token never goes into a URL; bull-board is reached with the session
// cookie POST /dashboard/session sets (see docs/remote-manager-dashboard.md).
(function () {
  'use strict';

  var View = window.RpsView;
  var TOKEN_KEY = 'rps.manager.token';
  var POLL_MS = 1000;
  var RUNS_LIMIT = 50;
  var config = null;
  var timer = null;
  var generation = 0;

  function $(id) {
    return document.getElementById(id);
  }

  function token() {
    return sessionStorage.getItem(TOKEN_KEY);
  }

  function setStatus(text, stale) {
    var el = $('status');
    el.textContent = text;
    el.className = stale ? 'status stale' : 'status';
  }

  function showSignin(message) {
    stopPolling();
    $('panels').hidden = true;
    $('signout').hidden = true;
    $('queues-link').hidden = true;
    $('signin').hidden = false;
    $('signin-error').textContent = message || '';
    setStatus('signed out', false);
    $('token').focus();
  }

  function showPanels() {
    $('signin').hidden = true;
    $('panels').hidden = false;
    $('signout').hidden = false;
    var link = $('queues-link');
    link.href = config.queuesPath;
    link.textContent = config.readOnly
      ? 'BullMQ queues (bull-board, read-only)'
      : 'BullMQ queues (bull-board)';
    link.hidden = false;
  }

  /** GET an API path with the bearer token: {status, body}; body null when not JSON. */
  function api(path, bearer) {
    return fetch(config.apiPrefix + path, {
      headers: { Authorization: 'Bearer ' + bearer, Accept: 'application/json' },
      cache: 'no-store',
      credentials: 'omit',
    }).then(function (res) {
      return res.json().then(
        function (body) {
          return { status: res.status, body: body };
        },
        function () {
          return { status: res.status, body: null };
        },
      );
    });
  }

  /** Trades the token for bull-board's session cookie (scoped to its path). */
  function openBoardSession(bearer) {
    return fetch(config.sessionPath, {
      method: 'POST',
      headers: { Authorization: 'Bearer ' + bearer },
      credentials: 'same-origin',
    }).then(
      function (res) {
        return res.ok;
      },
      function () {
        return false;
      },
    );
  }

  function renderTable(id, rows, emptyText) {
    var body = $(id).tBodies[0];
    var fresh = document.createDocumentFragment();
    if (rows.length === 0) {
      var tr = document.createElement('tr');
      var td = document.createElement('td');
      td.className = 'empty';
      td.colSpan = $(id).tHead.rows[0].cells.length;
      td.textContent = emptyText;
      tr.appendChild(td);
      fresh.appendChild(tr);
    }
    rows.forEach(function (row) {
      var tr = document.createElement('tr');
      tr.setAttribute('data-key', row.key);
      row.cells.forEach(function (cell) {
        var td = document.createElement('td');
        td.textContent = cell.text;
        if (cell.tone) td.className = 'tone-' + (View.TONES.indexOf(cell.tone) >= 0 ? cell.tone : 'other');
        if (cell.title) td.title = cell.title;
        tr.appendChild(td);
      });
      fresh.appendChild(tr);
    });
    body.replaceChildren(fresh);
  }

  function setCount(id, n) {
    $(id).textContent = typeof n === 'number' ? '(' + n + ')' : '';
  }

  function poll(gen) {
    var bearer = token();
    if (!bearer) return showSignin('');
    var paths = ['/machines', '/peers', '/runs?limit=' + RUNS_LIMIT, '/queues'];
    Promise.all(
      paths.map(function (p) {
        return api(p, bearer).catch(function (err) {
          return { status: 0, body: null, error: err };
        });
      }),
    ).then(function (answers) {
      if (gen !== generation) return;
      var denied = answers.filter(function (a) {
        return a.status === 401 || a.status === 403;
      })[0];
      if (denied) {
        sessionStorage.removeItem(TOKEN_KEY);
        return showSignin(
          'The manager refused the token (' + View.errorMessage(denied.status, denied.body) + ').',
        );
      }
      var now = Date.now();
      var problems = [];
      function ok(i, what) {
        var a = answers[i];
        if (a.status === 200 && a.body) return a.body;
        problems.push(
          what + ': ' + (a.status === 0 ? 'manager unreachable' : View.errorMessage(a.status, a.body)),
        );
        return null;
      }
      var machines = ok(0, 'machines');
      var peers = ok(1, 'peers');
      var runs = ok(2, 'runs');
      var queues = ok(3, 'queues');
      var peerList = peers ? peers.peers : [];
      if (machines) {
        renderTable('machines', View.machineRows(machines.machines, peerList, now), 'no machines registered');
        setCount('machines-count', machines.machines.length);
      }
      if (peers) {
        renderTable('peers', View.peerRows(peerList, now), 'no peer has registered');
        setCount('peers-count', peerList.length);
      }
      if (runs) {
        renderTable('runs', View.runRows(runs.runs, now), 'no runs');
        setCount('runs-count', runs.runs.length);
      }
      if (queues) renderTable('queues', View.queueRows(queues.queues), 'no queues');
      var at = new Date(now).toLocaleTimeString();
      if (problems.length) setStatus('updated ' + at + ' with errors: ' + problems.join('; '), true);
      else setStatus('live, updated ' + at, false);
      timer = setTimeout(function () {
        poll(gen);
      }, POLL_MS);
    });
  }

  function startPolling() {
    stopPolling();
    showPanels();
    poll(generation);
  }

  function stopPolling() {
    generation += 1;
    if (timer) clearTimeout(timer);
    timer = null;
  }

  /** After a bull-board redirect (?signin=<its path>), go back there; only to that one path. */
  function returnToBoard() {
    var wanted = new URLSearchParams(window.location.search).get('signin');
    if (
      wanted &&
      config.queuesPath.indexOf(wanted) === 0 &&
      wanted.charAt(0) === '/' &&
      wanted.charAt(1) !== '/'
    ) {
      window.location.assign(config.queuesPath);
      return true;
    }
    return false;
  }

  function signIn(event) {
    event.preventDefault();
    var bearer = $('token').value.trim();
    $('signin-error').textContent = '';
    api('/peers', bearer).then(
      function (a) {
        if (a.status === 401 || a.status === 403) {
          $('signin-error').textContent =
            'The manager refused this token (' + View.errorMessage(a.status, a.body) + ').';
          return;
        }
        sessionStorage.setItem(TOKEN_KEY, bearer);
        $('token').value = '';
        openBoardSession(bearer).then(function () {
          if (!returnToBoard()) startPolling();
        });
      },
      function () {
        $('signin-error').textContent = 'The manager does not answer.';
      },
    );
  }

  function signOut() {
    sessionStorage.removeItem(TOKEN_KEY);
    fetch(config.sessionPath, { method: 'DELETE', credentials: 'same-origin' }).catch(function () {});
    showSignin('Signed out.');
  }

  function boot() {
    $('signin-form').addEventListener('submit', signIn);
    $('signout').addEventListener('click', signOut);
    fetch('dashboard/config.json', { cache: 'no-store' })
      .then(function (res) {
        return res.json();
      })
      .then(function (c) {
        config = c;
        var bearer = token();
        if (!bearer) return showSignin('');
        // A reload: renew bull-board's session, then show the pool.
        openBoardSession(bearer).then(startPolling);
      })
      .catch(function () {
        setStatus('the manager does not answer; reload to try again', true);
      });
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', boot);
  else boot();
})();
