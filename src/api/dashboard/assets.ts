/**
 * The dashboard page, built into the daemon (no CDN, nothing fetched from elsewhere): plain
 * HTML, CSS and a script with no framework. The script keeps one DOM element per node, task,
 * service and network and changes only the elements a patch touches.
 */

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

export function loginPage(error: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>shoal dashboard: log in</title>
<style>body{font:15px system-ui,sans-serif;background:#0f1720;color:#e6edf3;display:grid;place-items:center;height:100vh;margin:0}
form{background:#1b2733;padding:2em;border-radius:8px;min-width:22em}input{width:100%;box-sizing:border-box;padding:.5em;margin:.5em 0;font:inherit}
button{padding:.5em 1.5em;font:inherit}.err{color:#ff7b72}code{background:#0f1720;padding:0 .3em}</style></head>
<body><form method="post" action="/login"><h2>shoal dashboard</h2>
<p>Token from <code>shoal dashboard token</code> (DOCKER_HOST at this manager):</p>
<input type="password" name="token" id="token" autocomplete="off" autofocus required>
${error ? `<p class="err">${esc(error)}</p>` : ''}<button type="submit">Log in</button></form></body></html>`;
}

export const PAGE_HTML = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>shoal swarm</title>
<link rel="stylesheet" href="/app.css"><script src="/app.js" defer></script></head>
<body><header><h1>shoal swarm</h1><span id="summary"></span><span id="conn" class="conn">connecting…</span>
<form method="post" action="/logout"><button>Log out</button></form></header>
<p id="notice" hidden></p>
<section><h2>Nodes</h2><div id="nodes" class="nodes"></div></section>
<section><h2>Services</h2><table id="services"><thead><tr><th>Name</th><th>Mode</th><th>Replicas</th><th>Image</th><th>Ports</th><th>Update</th><th></th></tr></thead><tbody></tbody></table></section>
<section id="logbox" hidden><h2>Logs: <span id="logname"></span> <button id="logclose">close</button></h2><pre id="logs"></pre></section>
<div class="cols"><section><h2>Networks</h2><table id="networks"><thead><tr><th>Name</th><th>Driver</th><th>Subnet</th><th>Flags</th></tr></thead><tbody></tbody></table></section>
<section><h2>Events</h2><ol id="events"></ol></section></div>
</body></html>`;

export const APP_CSS = `body{font:13px system-ui,sans-serif;background:#0f1720;color:#e6edf3;margin:0;padding:0 1em 2em}
header{display:flex;gap:1em;align-items:center;border-bottom:1px solid #2d3b48}header h1{font-size:18px}header form{margin-left:auto}
.conn{padding:2px 8px;border-radius:10px;background:#6e4b00}.conn.live{background:#1f6f3f}
h2{font-size:15px;margin:1em 0 .5em}#notice{background:#6e4b00;padding:.5em}
.nodes{display:flex;flex-wrap:wrap;gap:8px;align-items:flex-start}
.node{background:#1b2733;border-radius:6px;padding:6px;width:210px;border-top:4px solid #3fb950}
.node[data-state=down],.node[data-state=disconnected],.node[data-state=unknown]{border-top-color:#f85149;opacity:.75}
.node[data-avail=drain]{border-top-color:#8b949e}.node[data-avail=pause]{border-top-color:#d29922}
.node .h{font-weight:600;display:flex;justify-content:space-between}.node .m{color:#8b949e;font-size:11px;word-break:break-all}
.bar{height:4px;background:#2d3b48;margin:2px 0}.bar i{display:block;height:4px;background:#58a6ff}
.tasks{display:flex;flex-direction:column;gap:2px;margin-top:4px}
.task{border-radius:3px;padding:2px 4px;font-size:11px;color:#0f1720;display:flex;justify-content:space-between}
.task[data-state=running]{}.task:not([data-state=running]){opacity:.55;font-style:italic}
table{border-collapse:collapse;width:100%}td,th{text-align:left;padding:3px 6px;border-bottom:1px solid #2d3b48;vertical-align:top}
tr.svc{cursor:pointer}tr.svc:hover{background:#1b2733}.sw{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:4px}
.tl td{padding:0 6px 6px 24px}.tl table td{font-size:12px}.err{color:#ff7b72}
.cols{display:grid;grid-template-columns:1fr 1fr;gap:1em}#events{max-height:360px;overflow:auto;padding-left:1.5em;font-size:12px}
#logs{background:#000;max-height:300px;overflow:auto;padding:.5em;font-size:12px}`;

// The browser's script. Plain JS in a raw string (no backticks or dollar-brace inside).
export const APP_JS = String.raw`'use strict';
(function () {
  var S = { nodes: new Map(), tasks: new Map(), services: new Map(), networks: new Map(), byNode: new Map(), bySvc: new Map() };
  var el = { nodes: new Map(), tasks: new Map(), services: new Map(), networks: new Map() };
  var open = new Set();
  var stats = { patches: 0, ops: 0, lastPatchAt: 0 };
  window.__dashboard = stats;
  function $(id) { return document.getElementById(id); }
  function h(tag, cls, text) { var e = document.createElement(tag); if (cls) e.className = cls; if (text != null) e.textContent = text; return e; }
  function colour(id) { var x = 0; for (var i = 0; i < id.length; i++) x = (x * 31 + id.charCodeAt(i)) >>> 0; return 'hsl(' + (x % 360) + ',65%,65%)'; }
  function gb(b) { return (b / 1073741824).toFixed(1) + 'G'; }
  function cpus(n) { return (n / 1e9).toFixed(1); }
  function onNode(t) { return t.node && (t.desired === 'running' || t.desired === 'ready' || t.state === 'running'); }
  function live(t) { return t.desired === 'running' || t.desired === 'ready' || t.desired === 'complete'; }
  function index(map, key, id, add) { if (!key) return; var s = map.get(key); if (!s) { s = new Set(); map.set(key, s); } if (add) s.add(id); else s.delete(id); }

  // ---- nodes ----
  function nodeEl(n) {
    var e = el.nodes.get(n.id);
    if (!e) {
      e = h('div', 'node'); e.dataset.id = n.id;
      e.innerHTML = '<div class="h"><span class="n"></span><span class="r"></span></div><div class="m s"></div><div class="m a"></div><div class="m l"></div><div class="m nl"></div>' +
        '<div class="m c"></div><div class="bar"><i class="cb"></i></div><div class="m mm"></div><div class="bar"><i class="mb"></i></div><div class="tasks"></div>';
      el.nodes.set(n.id, e);
      var list = $('nodes'), before = null;
      for (var c = list.firstChild; c; c = c.nextSibling) if ((c.dataset.host || '') > n.host) { before = c; break; }
      list.insertBefore(e, before);
    }
    return e;
  }
  function renderNode(n) {
    var e = nodeEl(n);
    e.dataset.host = n.host; e.dataset.state = n.state; e.dataset.avail = n.avail; e.dataset.role = n.role; e.dataset.leader = n.leader ? 'true' : 'false';
    e.querySelector('.n').textContent = n.host;
    e.querySelector('.r').textContent = n.role + (n.leader ? ' ★ leader' : '');
    e.querySelector('.s').textContent = n.state + ' · ' + n.avail;
    e.querySelector('.a').textContent = n.addr;
    var kv = function (o) { return Object.keys(o).map(function (k) { return k + '=' + o[k]; }).join(' '); };
    var l = kv(n.labels), nl = kv(n.nodeLabels);
    e.querySelector('.l').textContent = l ? 'engine: ' + l : '';
    e.querySelector('.nl').textContent = nl ? 'node: ' + nl : '';
    renderNodeUse(n.id);
  }
  function renderNodeUse(id) {
    var n = S.nodes.get(id), e = el.nodes.get(id); if (!n || !e) return;
    var cpu = 0, mem = 0, ids = S.byNode.get(id);
    if (ids) ids.forEach(function (tid) { var t = S.tasks.get(tid); if (t && onNode(t)) { cpu += t.cpu; mem += t.mem; } });
    e.querySelector('.c').textContent = 'CPU ' + cpus(cpu) + ' / ' + cpus(n.cpu) + ' reserved';
    e.querySelector('.cb').style.width = (n.cpu ? Math.min(100, 100 * cpu / n.cpu) : 0) + '%';
    e.querySelector('.mm').textContent = 'memory ' + gb(mem) + ' / ' + gb(n.mem) + ' reserved';
    e.querySelector('.mb').style.width = (n.mem ? Math.min(100, 100 * mem / n.mem) : 0) + '%';
  }

  // ---- tasks on nodes ----
  function renderTask(t) {
    var e = el.tasks.get(t.id);
    if (!onNode(t) || !el.nodes.has(t.node)) { if (e) { e.remove(); el.tasks.delete(t.id); } return; }
    if (!e) {
      e = h('div', 'task'); e.dataset.id = t.id; e.style.background = colour(t.svc);
      e.innerHTML = '<span class="tn"></span><span class="ts"></span>';
      el.tasks.set(t.id, e);
    }
    var box = el.nodes.get(t.node).querySelector('.tasks');
    if (e.parentNode !== box) box.appendChild(e);
    e.dataset.state = t.state; e.dataset.desired = t.desired; e.dataset.service = t.name; e.dataset.node = t.node;
    e.title = t.name + '.' + t.slot + ' ' + t.image + ' (' + t.state + ')';
    e.querySelector('.tn').textContent = t.name + (t.slot ? '.' + t.slot : '') + ' ' + t.image;
    e.querySelector('.ts').textContent = t.state;
  }

  // ---- services ----
  function renderService(id) {
    var s = S.services.get(id), row = el.services.get(id);
    if (!s) { if (row) { row.tr.remove(); row.tl.remove(); el.services.delete(id); } return; }
    if (!row) {
      var tr = h('tr', 'svc'); tr.dataset.id = id;
      tr.innerHTML = '<td class="sn"></td><td class="sm"></td><td class="sr"></td><td class="si"></td><td class="sp"></td><td class="su"></td><td><button class="lg">logs</button></td>';
      var tl = h('tr', 'tl'); tl.hidden = true; tl.innerHTML = '<td colspan="7"><table><tbody></tbody></table></td>';
      tr.addEventListener('click', function (ev) {
        if (ev.target.classList.contains('lg')) { showLogs(id); return; }
        if (open.has(id)) open.delete(id); else open.add(id);
        tl.hidden = !open.has(id); renderServiceTasks(id);
      });
      row = { tr: tr, tl: tl }; el.services.set(id, row);
      var body = $('services').tBodies[0], before = null;
      for (var c = body.firstChild; c; c = c.nextSibling) if (c.classList.contains('svc') && (c.dataset.name || '') > s.name) { before = c; break; }
      body.insertBefore(tr, before); body.insertBefore(tl, before);
    }
    var running = 0, current = 0, desiredGlobal = 0, ids = S.bySvc.get(id);
    if (ids) ids.forEach(function (tid) {
      var t = S.tasks.get(tid); if (!t) return;
      if (t.desired === 'running') { desiredGlobal++; if (t.state === 'running') { running++; if (t.ver === s.ver) current++; } }
    });
    var desired = s.mode === 'global' || s.mode === 'global-job' ? desiredGlobal : s.replicas;
    row.tr.dataset.name = s.name; row.tr.dataset.running = running; row.tr.dataset.desired = desired;
    row.tr.querySelector('.sn').innerHTML = ''; var sw = h('span', 'sw'); sw.style.background = colour(id);
    row.tr.querySelector('.sn').append(sw, s.name);
    row.tr.querySelector('.sm').textContent = s.mode;
    row.tr.querySelector('.sr').textContent = running + '/' + desired;
    row.tr.querySelector('.si').textContent = s.image;
    row.tr.querySelector('.sp').textContent = s.ports.join(', ');
    var u = s.update, ut = '';
    if (u) { ut = u.state; if (u.state === 'updating' || u.state === 'rollback_started') ut += ' ' + current + '/' + desired; if (u.msg) ut += ': ' + u.msg; }
    row.tr.querySelector('.su').textContent = ut;
    if (open.has(id)) renderServiceTasks(id);
  }
  function renderServiceTasks(id) {
    var row = el.services.get(id); if (!row || !open.has(id)) return;
    var body = row.tl.querySelector('tbody'); body.textContent = '';
    var list = []; var ids = S.bySvc.get(id);
    if (ids) ids.forEach(function (tid) { var t = S.tasks.get(tid); if (t) list.push(t); });
    list.sort(function (a, b) { return a.slot - b.slot || (live(b) ? 1 : 0) - (live(a) ? 1 : 0); });
    list.forEach(function (t) {
      var n = S.nodes.get(t.node), tr = h('tr');
      [t.id.slice(0, 12), (t.name + '.' + (t.slot || t.node.slice(0, 12))), n ? n.host : '', 'desired ' + t.desired, t.state, t.image].forEach(function (x) { tr.append(h('td', null, x)); });
      tr.append(h('td', 'err', t.err)); body.append(tr);
    });
  }

  // ---- networks ----
  function renderNetwork(id) {
    var n = S.networks.get(id), tr = el.networks.get(id);
    if (!n) { if (tr) { tr.remove(); el.networks.delete(id); } return; }
    if (!tr) { tr = h('tr'); tr.innerHTML = '<td></td><td></td><td></td><td></td>'; el.networks.set(id, tr); $('networks').tBodies[0].append(tr); }
    var f = [n.ingress ? 'ingress' : '', n.attachable ? 'attachable' : '', n.internal ? 'internal' : ''].filter(Boolean).join(' ');
    [n.name, n.driver, n.subnet, f].forEach(function (x, i) { tr.cells[i].textContent = x; });
  }

  // ---- events ----
  function addEvent(e) {
    var list = $('events'), li = h('li');
    var a = e.Actor.Attributes, extra = Object.keys(a).filter(function (k) { return k !== 'name'; }).map(function (k) { return k + '=' + a[k]; }).join(' ');
    li.textContent = new Date(e.time * 1000).toLocaleTimeString() + ' ' + e.Type + ' ' + e.Action + ' ' + (a.name || e.Actor.ID.slice(0, 12)) + (extra ? ' (' + extra + ')' : '');
    list.insertBefore(li, list.firstChild);
    while (list.children.length > 200) list.lastChild.remove();
  }

  // ---- logs on demand ----
  var logSource = null;
  function showLogs(id) {
    if (logSource) logSource.close();
    var s = S.services.get(id); $('logbox').hidden = false; $('logname').textContent = s ? s.name : id;
    var pre = $('logs'); pre.textContent = '';
    logSource = new EventSource('/api/services/' + id + '/logs');
    logSource.onmessage = function (m) {
      var l = JSON.parse(m.data), line = h('div', l.err ? 'err' : null, l.head + ' | ' + l.line);
      pre.append(line); while (pre.children.length > 1000) pre.firstChild.remove();
      pre.scrollTop = pre.scrollHeight;
    };
  }
  $('logclose').addEventListener('click', function () { if (logSource) logSource.close(); logSource = null; $('logbox').hidden = true; });

  // ---- applying the feed ----
  function putTask(t) {
    var old = S.tasks.get(t.id);
    if (old) { index(S.byNode, old.node, t.id, false); index(S.bySvc, old.svc, t.id, false); }
    S.tasks.set(t.id, t); index(S.byNode, t.node, t.id, true); index(S.bySvc, t.svc, t.id, true);
    return old;
  }
  function summary() {
    var running = 0; S.tasks.forEach(function (t) { if (t.state === 'running' && t.desired === 'running') running++; });
    $('summary').textContent = S.nodes.size + ' nodes · ' + S.services.size + ' services · ' + running + ' tasks running';
  }
  function snapshot(m) {
    S.nodes.clear(); S.tasks.clear(); S.services.clear(); S.networks.clear(); S.byNode.clear(); S.bySvc.clear();
    ['nodes', 'tasks', 'services', 'networks'].forEach(function (k) { el[k].clear(); });
    $('nodes').textContent = ''; $('services').tBodies[0].textContent = ''; $('networks').tBodies[0].textContent = ''; $('events').textContent = '';
    $('notice').hidden = m.manager; $('notice').textContent = m.manager ? '' : 'This node is not a manager with a quorum right now: nothing to show.';
    m.nodes.forEach(function (n) { S.nodes.set(n.id, n); renderNode(n); });
    m.tasks.forEach(function (t) { putTask(t); renderTask(t); });
    m.nodes.forEach(function (n) { renderNodeUse(n.id); });
    m.services.forEach(function (s) { S.services.set(s.id, s); renderService(s.id); });
    m.networks.forEach(function (n) { S.networks.set(n.id, n); renderNetwork(n.id); });
    m.events.forEach(addEvent);
    summary();
  }
  function patch(ops) {
    var dirtyNodes = new Set(), dirtySvcs = new Set();
    ops.forEach(function (op) {
      var kind = op[0], id = op[1], v = op[2];
      if (kind === 'node') {
        if (v) { S.nodes.set(id, v); renderNode(v); var ids = S.byNode.get(id); if (ids) ids.forEach(function (tid) { renderTask(S.tasks.get(tid)); }); }
        else { S.nodes.delete(id); var e = el.nodes.get(id); if (e) { e.querySelectorAll('.task').forEach(function (x) { el.tasks.delete(x.dataset.id); }); e.remove(); el.nodes.delete(id); } }
      } else if (kind === 'task') {
        var old = S.tasks.get(id);
        if (v) { putTask(v); renderTask(v); dirtyNodes.add(v.node); dirtySvcs.add(v.svc); }
        else if (old) { S.tasks.delete(id); index(S.byNode, old.node, id, false); index(S.bySvc, old.svc, id, false); var te = el.tasks.get(id); if (te) { te.remove(); el.tasks.delete(id); } }
        if (old) { dirtyNodes.add(old.node); dirtySvcs.add(old.svc); }
      } else if (kind === 'service') {
        if (v) S.services.set(id, v); else S.services.delete(id);
        dirtySvcs.add(id);
      } else if (kind === 'network') {
        if (v) S.networks.set(id, v); else S.networks.delete(id);
        renderNetwork(id);
      }
    });
    dirtyNodes.forEach(renderNodeUse); dirtySvcs.forEach(renderService);
    summary();
    stats.patches++; stats.ops += ops.length; stats.lastPatchAt = Date.now();
  }

  var loggedOut = false;
  function connect() {
    var src = new EventSource('/api/feed');
    src.onopen = function () { $('conn').textContent = 'live'; $('conn').className = 'conn live'; };
    src.onerror = function () {
      $('conn').textContent = 'reconnecting…'; $('conn').className = 'conn';
      // A rotated token or an expired login: back to the login form, once (the stream's own retries stop).
      fetch('/api/snapshot', { method: 'HEAD' }).then(function (r) {
        if (r.status === 401 && !loggedOut) { loggedOut = true; src.close(); location.reload(); }
      }, function () {});
    };
    src.onmessage = function (m) {
      var msg = JSON.parse(m.data);
      if (msg.t === 'snapshot') snapshot(msg);
      else if (msg.t === 'patch') patch(msg.ops);
      else if (msg.t === 'event') addEvent(msg.e);
    };
  }
  connect();
})();
`;
