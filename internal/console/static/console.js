// zkcoord console: reads the gateway's HTTP/JSON API with the caller's
// bearer token and renders it. No framework, no build step: plain DOM
// calls, text set with textContent only (never HTML from the API).
"use strict";

// The lists are read every 2 s, or every ?refresh=N ms (at least 200).
const REFRESH_MS = Math.max(200, Number(new URLSearchParams(window.location.search).get("refresh")) || 2000);
const store = window.sessionStorage;
const state = {
  token: store.getItem("zkcoord.token") || "",
  prefix: store.getItem("zkcoord.prefix") || "",
  mode: "unknown", // open | none | read | admin | refused
  group: null, groupStream: null,
  election: null, electionStream: null,
  timer: null,
  gen: 0, // start's generation: an older refresh loop stops
};

const $ = (sel) => document.querySelector(sel);

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function headers() {
  const h = {};
  if (state.token) h["Authorization"] = "Bearer " + state.token;
  return h;
}

// call makes one API call and returns {ok, status, body}; body is the
// parsed JSON (an error is a google.rpc.Status: code, message).
async function call(method, path, withToken = true) {
  let resp;
  try {
    resp = await fetch(path, { method, headers: withToken ? headers() : {}, cache: "no-store" });
  } catch (err) {
    return { ok: false, status: 0, body: { message: "gateway unreachable: " + err } };
  }
  let body = null;
  const text = await resp.text();
  try { body = JSON.parse(text); } catch (_) { body = { message: text.trim() }; }
  return { ok: resp.ok, status: resp.status, body };
}

function refusalText(r) {
  const b = r.body || {};
  const codes = { 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED" };
  return (codes[r.status] || "HTTP " + r.status) + ": " + (b.message || "");
}

// detectMode finds out whether auth is on, and whether the caller is an
// admin (GetStatus needs admin over every name).
async function detectMode() {
  const anon = await call("GET", "/v1/status", false);
  const badge = $("#mode");
  const refusal = $("#refusal");
  refusal.hidden = true;
  if (anon.ok) {
    state.mode = "open";
    badge.textContent = "open: no auth configured, anyone who reaches this port may read and change everything";
  } else if (!state.token) {
    state.mode = "none";
    badge.textContent = "auth on: a bearer token is needed";
    const r = await call("GET", "/v1/groups?prefix=" + encodeURIComponent(state.prefix));
    refusal.textContent = "The gateway refused: " + refusalText(r) + ". Enter a bearer token above.";
    refusal.hidden = false;
  } else {
    const r = await call("GET", "/v1/status");
    if (r.ok) {
      state.mode = "admin";
      badge.textContent = "admin";
    } else if (r.status === 401) {
      state.mode = "refused";
      badge.textContent = "token refused";
      refusal.textContent = "The gateway refused the token: " + refusalText(r);
      refusal.hidden = false;
    } else {
      state.mode = "read";
      badge.textContent = "read-only (not an admin)";
    }
  }
  badge.className = "badge " + state.mode;
  document.body.classList.toggle("is-admin", state.mode === "admin" || state.mode === "open");
}

function isAdmin() { return state.mode === "admin" || state.mode === "open"; }

// list reads every page of an InspectService list.
async function list(path, field, scoped) {
  const items = [];
  let token = "";
  for (let page = 0; page < 20; page++) {
    const q = new URLSearchParams({ pageSize: "500" });
    if (scoped && state.prefix) q.set("prefix", state.prefix);
    if (token) q.set("pageToken", token);
    const r = await call("GET", path + "?" + q);
    if (!r.ok) return { error: refusalText(r) };
    items.push(...(r.body[field] || []));
    token = r.body.nextPageToken;
    if (!token) break;
  }
  return { items };
}

function fill(tbody, cols, res, row) {
  tbody.replaceChildren();
  if (res.error || res.items.length === 0) {
    const tr = el("tr");
    const td = el("td", res.error || "none", "empty");
    td.colSpan = cols;
    tr.append(td);
    tbody.append(tr);
    return;
  }
  for (const it of res.items) tbody.append(row(it));
}

function tr(cells) {
  const r = el("tr");
  for (const c of cells) r.append(c instanceof Node ? c : el("td", c));
  return r;
}

function short(node) { return node && node.length > 24 ? node.slice(0, 10) + "…" + node.slice(-10) : node || ""; }

function since(ts) { return ts ? new Date(ts).toLocaleTimeString() : ""; }

function left(expiresAt, exact) {
  if (!expiresAt) return "";
  const s = Math.max(0, (new Date(expiresAt) - Date.now()) / 1000);
  return (exact ? "" : "≈") + s.toFixed(1) + "s";
}

async function refresh() {
  if (state.mode === "none" || state.mode === "refused") return;
  const hz = await fetch("/healthz", { cache: "no-store" }).then((r) => r.text(), (e) => "unreachable: " + e);
  $("#healthz").textContent = hz.trim();
  await refreshStatus();
  const [groups, elections, barriers, locks, sems, leases, replicas] = await Promise.all([
    list("/v1/groups", "groups", true), list("/v1/elections", "elections", true),
    list("/v1/barriers", "barriers", true), list("/v1/locks", "locks", true),
    list("/v1/semaphores", "semaphores", true), list("/v1/leases", "leases", false),
    call("GET", "/v1/replicas").then((r) => (r.ok ? { items: r.body.replicas || [] } : { error: refusalText(r) })),
  ]);
  fill($("#groups-body"), 3, groups, (g) => {
    const r = tr([g.name, g.members, g.revision]);
    r.dataset.group = g.name;
    r.classList.add("pick");
    r.classList.toggle("selected", g.name === state.group);
    r.addEventListener("click", () => selectGroup(g.name));
    return r;
  });
  fill($("#elections-body"), 4, elections, (e) => {
    const r = tr([e.name, e.leader ? short(e.leader.candidate) + " (" + e.leader.value + ")" : "(none)",
      e.leader ? e.leader.fencingToken : "", e.candidates]);
    r.dataset.election = e.name;
    r.classList.add("pick");
    r.classList.toggle("selected", e.name === state.election);
    r.addEventListener("click", () => selectElection(e.name));
    return r;
  });
  fill($("#barriers-body"), 3, barriers, (b) =>
    tr([b.name, b.arrived + " / " + b.threshold, b.released ? "released" : "waiting"]));
  fill($("#locks-body"), 3, locks, (l) => tr([l.name,
    (l.holders || []).map((h) => short(h.node) + " " + mode(h.mode) + " #" + h.fencingToken + " ×" + h.holds).join(", ") || "(free)",
    (l.waiters || []).map((w) => short(w.node) + " " + mode(w.mode) + " @" + w.position).join(", ")]));
  fill($("#semaphores-body"), 4, sems, (s) => tr([s.name, s.permits,
    (s.holders || []).map((h) => "#" + h.token + " " + h.value).join(", "),
    (s.waiters || []).map((w) => "#" + w.token + " " + w.value).join(", ")]));
  fill($("#leases-body"), 6, leases, (l) => tr([el("td", l.key, "mono"), l.ttl, left(l.expiresAt, l.expiryExact),
    l.owner, l.holder, el("td", (l.owned || []).join("\n"), "owns")]));
  fill($("#replicas-body"), 3, replicas, (r) => tr([r.id, r.address, r.self ? "this replica" : ""]));
}

function mode(m) { return m === "LOCK_MODE_SHARED" ? "shared" : "exclusive"; }

async function refreshStatus() {
  const tbody = $("#status tbody");
  const note = $("#status-note");
  const r = await call("GET", "/v1/status");
  tbody.replaceChildren();
  if (!r.ok) {
    note.textContent = "GetStatus: " + refusalText(r);
    note.hidden = false;
    return;
  }
  note.hidden = true;
  const s = r.body;
  const rows = [["ZooKeeper session", (s.state || "").replace("CONNECTION_STATE_", "")], ["since", s.stateSince],
    ["server", s.server], ["ensemble", (s.servers || []).join(", ")], ["session id", s.sessionId],
    ["session timeout", s.sessionTimeout], ["expirations", s.sessionExpirations], ["root", (s.chroot || "") + s.root],
    ["replica", s.replicaId], ["version", s.version], ["leases", s.leases], ["watched groups", s.watchedGroups]];
  for (const [k, v] of rows) {
    const row = tr([el("th", k), el("td", v, "mono")]);
    if (k === "ZooKeeper session") row.id = "zk-state";
    tbody.append(row);
  }
}

// stream follows an NDJSON stream until it ends or is aborted, calling
// onLine with each message; it reconnects after an end or error.
function stream(path, onLine, onState) {
  const ctl = new AbortController();
  const run = async () => {
    while (!ctl.signal.aborted) {
      onState("connecting");
      try {
        const resp = await fetch(path, { headers: headers(), signal: ctl.signal, cache: "no-store" });
        if (!resp.ok) {
          const body = await resp.json().catch(() => ({}));
          onState("refused: " + refusalText({ status: resp.status, body }));
          return;
        }
        onState("live");
        const reader = resp.body.getReader();
        const dec = new TextDecoder();
        let buf = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += dec.decode(value, { stream: true });
          let nl;
          while ((nl = buf.indexOf("\n")) >= 0) {
            const line = buf.slice(0, nl).trim();
            buf = buf.slice(nl + 1);
            if (!line) continue;
            const msg = JSON.parse(line);
            if (msg.error) onState("ended: " + msg.error.message);
            else onLine(msg);
          }
        }
      } catch (err) {
        if (ctl.signal.aborted) return;
        onState("error: " + err);
      }
      await new Promise((ok) => setTimeout(ok, 1000)); // then resubscribe from a snapshot
    }
  };
  run();
  return ctl;
}

function selectGroup(name) {
  if (state.groupStream) state.groupStream.abort();
  state.group = name;
  for (const r of document.querySelectorAll("#groups-body tr")) r.classList.toggle("selected", r.dataset.group === name);
  $("#group-detail").hidden = false;
  $("#group-name").textContent = name;
  $("#group-rev").textContent = "";
  $("#group-events").replaceChildren();
  const members = new Map();
  let snapshotDone = true;
  const log = (text) => {
    const ol = $("#group-events");
    ol.prepend(el("li", text));
    while (ol.children.length > 50) ol.lastChild.remove();
  };
  state.groupStream = stream("/v1/groups/" + encodeURIComponent(name) + ":watch", (m) => {
    let joined = null;
    switch (m.type) {
      case "TYPE_SNAPSHOT":
        if (snapshotDone) members.clear();
        for (const x of m.members || []) members.set(x.id, x);
        snapshotDone = !m.more;
        log("rev " + m.revision + ": snapshot, " + members.size + " members" + (m.resync ? " (resync)" : ""));
        break;
      case "TYPE_JOINED": case "TYPE_UPDATED":
        members.set(m.member.id, m.member);
        joined = m.member.id;
        log("rev " + m.revision + ": " + m.member.id + (m.type === "TYPE_JOINED" ? " joined" : " updated"));
        break;
      case "TYPE_LEFT":
        members.delete(m.member.id);
        log("rev " + m.revision + ": " + m.member.id + " left");
        break;
    }
    $("#group-rev").textContent = m.revision;
    renderMembers(name, members, joined);
  }, (s) => { $("#group-stream").textContent = s; });
}

function renderMembers(group, members, joined) {
  const tbody = $("#members");
  tbody.replaceChildren();
  for (const m of [...members.values()].sort((a, b) => (a.id < b.id ? -1 : 1))) {
    const meta = Object.entries(m.metadata || {}).map(([k, v]) => k + "=" + v).join(" ");
    const act = el("td", null, "admin-only");
    if (m.persistent) {
      const b = el("button", "Deregister", "danger");
      b.addEventListener("click", () => deregister(group, m.id, b));
      act.append(b);
    } else {
      act.textContent = "—";
      act.title = "owned by a lease: only its holder deregisters it (the console never sees lease ids)";
    }
    const r = tr([el("td", m.id, "mono"), el("td", m.value, "mono"), meta, m.persistent ? "persistent" : "lease", since(m.createdAt), act]);
    r.dataset.member = m.id;
    if (m.id === joined) r.classList.add("joined");
    tbody.append(r);
  }
  if (members.size === 0) {
    const r = el("tr");
    const td = el("td", "no members", "empty");
    td.colSpan = 6;
    r.append(td);
    tbody.append(r);
  }
}

// deregister removes a persistent member (Deregister without a lease id:
// allowed to the principal that registered it and to an admin over every
// name). The first click arms the button, the second calls.
async function deregister(group, id, button) {
  if (button.dataset.armed !== "1") {
    button.dataset.armed = "1";
    button.textContent = "Confirm deregister";
    return;
  }
  button.disabled = true;
  const r = await call("DELETE", "/v1/groups/" + encodeURIComponent(group) + "/members/" + encodeURIComponent(id));
  const ol = $("#group-events");
  ol.prepend(el("li", r.ok ? "deregistered " + id + " at rev " + r.body.revision : "deregister " + id + ": " + refusalText(r)));
  if (!r.ok) button.disabled = false;
}

function selectElection(name) {
  if (state.electionStream) state.electionStream.abort();
  state.election = name;
  for (const r of document.querySelectorAll("#elections-body tr")) r.classList.toggle("selected", r.dataset.election === name);
  $("#election-detail").hidden = false;
  $("#election-name").textContent = name;
  state.electionStream = stream("/v1/elections/" + encodeURIComponent(name) + ":observe", (m) => {
    const l = m.leader;
    $("#election-rev").textContent = m.revision;
    $("#leader-candidate").textContent = l ? l.candidate : "(no leader)";
    $("#leader-value").textContent = l ? l.value : "";
    $("#leader-token").textContent = l ? l.fencingToken : "";
    $("#leader-since").textContent = l ? l.campaignedAt : "";
  }, (s) => { $("#election-stream").textContent = s; });
}

async function start() {
  clearTimeout(state.timer);
  for (const s of [state.groupStream, state.electionStream]) if (s) s.abort();
  state.groupStream = state.electionStream = null;
  const g = state.group, e = state.election;
  await detectMode();
  if (state.mode === "none" || state.mode === "refused") return;
  if (g) selectGroup(g);
  if (e) selectElection(e);
  const gen = ++state.gen;
  const loop = async () => {
    if (gen !== state.gen) return;
    await refresh();
    if (gen === state.gen) state.timer = setTimeout(loop, REFRESH_MS);
  };
  loop();
}

document.addEventListener("DOMContentLoaded", () => {
  $("#period").textContent = REFRESH_MS / 1000 + " s";
  $("#token").value = state.token;
  $("#prefix").value = state.prefix;
  $("#token-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    state.token = $("#token").value.trim();
    state.prefix = $("#prefix").value.trim();
    store.setItem("zkcoord.token", state.token);
    store.setItem("zkcoord.prefix", state.prefix);
    start();
  });
  $("#sign-out").addEventListener("click", () => {
    store.removeItem("zkcoord.token");
    state.token = "";
    $("#token").value = "";
    start();
  });
  start();
});
