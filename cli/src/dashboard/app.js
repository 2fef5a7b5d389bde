// The dashboard of `agent-backlog serve`: plain JavaScript over the REST API, nothing
// fetched from elsewhere. Agents and their counts (GET /api/agents), the cross-agent
// table with filters and paging (GET /api/backlogs), a task's detail with its history,
// live updates from the event stream (GET /api/events/stream?after=now), and — with
// `serve --ui-actions` — requeue, block, reprioritize and delete.
"use strict";

const PAGE = 25;
const actionsOn = document.body.dataset.actions === "true";
const AGENTS = 20; // agents per page of the agents table
const state = { offset: 0, agentsOffset: 0, selected: null, refresh: { timer: null, running: false, again: false }, loads: { tasks: 0, detail: 0 } };
const $ = (id) => document.getElementById(id);

// Under `serve --auth`, the admin token: given once as /#token=<secret> (a fragment
// never reaches the server or its log), or typed when the server asks for one; kept
// for this tab only.
const TOKEN_KEY = "agent-backlog-token";
(function takeTokenFromUrl() {
  const match = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (match) {
    let token = match[1];
    try {
      token = decodeURIComponent(token);
    } catch (error) {
      // not percent-encoded: taken as it is
    }
    sessionStorage.setItem(TOKEN_KEY, token);
    history.replaceState(null, "", location.pathname + location.search);
  }
})();

function withToken(options) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (!token) return options || {};
  const given = options || {};
  return { ...given, headers: { ...(given.headers || {}), Authorization: `Bearer ${token}` } };
}

let asking = false;
function askForToken(message) {
  if (asking) return;
  asking = true;
  const token = prompt(`${message}\n\nPaste an admin token (agent-backlog token create --admin):`);
  if (token) {
    sessionStorage.setItem(TOKEN_KEY, token.trim());
    location.reload();
  }
}

async function api(path, options) {
  const response = await fetch(path, withToken(options));
  if (response.status === 204) return null;
  if (response.status === 401 || response.status === 403) {
    const body = await response.json().catch(() => ({}));
    const message = body.error ? body.error.message : "This server needs an admin token.";
    // 403 on the dashboard's reads: a token that is not an admin's.
    if (response.status === 401 || body.error?.code === "forbidden") askForToken(message);
    const error = new Error(message);
    error.code = body.error ? body.error.code : String(response.status);
    throw error;
  }
  const body = await response.json();
  if (!response.ok) {
    const error = new Error(body.error ? body.error.message : response.statusText);
    error.code = body.error ? body.error.code : String(response.status);
    throw error;
  }
  return body;
}

function element(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

function statusBadge(status) {
  return element("span", status.replace("_", " "), `status ${status}`);
}

function when(time) {
  return time ? time.replace("T", " ").replace("Z", "") : "—";
}

async function loadAgents() {
  let list = await api(`/api/agents?limit=${AGENTS}&offset=${state.agentsOffset}`);
  if (list.agents.length === 0 && state.agentsOffset > 0) {
    state.agentsOffset = Math.max(0, Math.floor((list.total - 1) / AGENTS) * AGENTS);
    list = await api(`/api/agents?limit=${AGENTS}&offset=${state.agentsOffset}`);
  }
  const body = $("agents").tBodies[0];
  body.replaceChildren();
  for (const agent of list.agents) {
    const row = element("tr");
    row.dataset.agent = agent.agent_id;
    row.append(element("td", agent.agent_id), element("td", agent.prefix));
    for (const key of ["queued", "in_progress", "complete", "blocked", "total"]) {
      const cell = element("td", agent[key], "n");
      cell.dataset.count = key;
      row.append(cell);
    }
    body.append(row);
  }
  $("agents-total").textContent = `${list.total}`;
  const first = list.agents.length ? state.agentsOffset + 1 : 0;
  $("agents-page").textContent = list.total > AGENTS
    ? `${first}–${state.agentsOffset + list.agents.length} of ${list.total}` : "";
  $("agents-pager").hidden = list.total <= AGENTS;
  $("agents-prev").disabled = state.agentsOffset === 0;
  $("agents-next").disabled = state.agentsOffset + list.agents.length >= list.total;
  // The agent filter suggests the agents of this page; any agent_id may be typed.
  const names = $("agent-names");
  names.replaceChildren(...list.agents.map((a) => {
    const option = element("option");
    option.value = a.agent_id;
    return option;
  }));
}

function filters() {
  const params = new URLSearchParams();
  for (const [id, name] of [["filter-status", "status"], ["filter-priority", "priority"], ["filter-agent", "agent_id"]]) {
    const value = $(id).value.trim();
    if (value) params.set(name, value);
  }
  return params;
}

async function loadTasks() {
  const params = filters();
  params.set("limit", PAGE);
  params.set("offset", state.offset);
  const load = ++state.loads.tasks;
  const page = await api(`/api/backlogs?${params}`);
  if (load !== state.loads.tasks) return; // a newer load is on its way
  if (page.tasks.length === 0 && state.offset > 0) {
    state.offset = Math.max(0, Math.floor((page.total - 1) / PAGE) * PAGE);
    if (page.total > 0) return loadTasks();
  }
  const body = $("tasks").tBodies[0];
  body.replaceChildren();
  for (const task of page.tasks) {
    const row = element("tr");
    row.dataset.agent = task.agent_id;
    row.dataset.id = task.id;
    const selected = state.selected && state.selected.agent === task.agent_id && state.selected.id === task.id;
    if (selected) row.classList.add("selected");
    const status = element("td");
    status.append(statusBadge(task.status));
    row.append(element("td", task.agent_id), element("td", task.id), element("td", task.title, "title"),
      element("td", task.priority, "n"), status, element("td", when(task.created)));
    row.tabIndex = 0;
    row.addEventListener("click", () => select(task.agent_id, task.id));
    row.addEventListener("keydown", (event) => {
      if (event.key === "Enter" || event.key === " ") {
        event.preventDefault();
        select(task.agent_id, task.id);
      }
    });
    body.append(row);
  }
  $("tasks-total").textContent = `${page.total}`;
  const first = page.tasks.length ? state.offset + 1 : 0;
  $("page").textContent = page.total ? `${first}–${state.offset + page.tasks.length} of ${page.total}` : "no tasks";
  $("prev").disabled = state.offset === 0;
  $("next").disabled = state.offset + page.tasks.length >= page.total;
}

function select(agent, id) {
  state.selected = { agent, id };
  for (const row of $("tasks").tBodies[0].rows) {
    row.classList.toggle("selected", row.dataset.agent === agent && row.dataset.id === id);
  }
  $("action-error").textContent = "";
  loadDetail();
}

async function loadDetail() {
  const panel = $("detail-panel");
  if (!state.selected) {
    panel.hidden = true;
    return;
  }
  const { agent, id } = state.selected;
  const load = ++state.loads.detail;
  const base = `/api/backlogs/${encodeURIComponent(agent)}/${encodeURIComponent(id)}`;
  let task = null;
  try {
    task = await api(base);
  } catch (error) {
    if (error.code !== "not_found") throw error;
  }
  const history = await api(`${base}/history`).catch(() => ({ events: [] }));
  if (load !== state.loads.detail) return; // another task was chosen meanwhile
  panel.hidden = false;
  $("detail-id").textContent = `${agent} / ${id}`;
  const list = $("detail");
  list.replaceChildren();
  const rows = task
    ? [["title", task.title], ["status", task.status], ["priority", task.priority],
       ["description", task.description], ["created", when(task.created)], ["started", when(task.started)],
       ["completed", when(task.completed)], ["result", task.result], ["blocker", task.blocker]]
    : [["status", "deleted"]];
  for (const [name, value] of rows) {
    const dd = element("dd");
    if (name === "status" && task) dd.append(statusBadge(value));
    else dd.textContent = value === null || value === undefined ? "—" : String(value);
    list.append(element("dt", name), dd);
  }
  $("actions").hidden = !actionsOn || !task;
  const events = $("history");
  events.replaceChildren();
  for (const event of history.events) {
    const item = element("li", `${event.type.replace("_", " ")}${event.actor ? ` by ${event.actor}` : ""}`);
    const detail = describe(event);
    if (detail) item.append(element("span", ` — ${detail}`));
    item.append(element("div", when(event.at), "muted"));
    events.append(item);
  }
}

// What an event changed, in words (SPEC §14's data of each type).
function describe(event) {
  const data = event.data || {};
  const move = data.from && data.to ? `${data.from} → ${data.to}` : data.to ? `to ${data.to}` : "";
  switch (event.type) {
    case "created": return `"${data.title}", priority ${data.priority}`;
    case "updated": return [move, data.changed ? `changed ${data.changed.join(", ")}` : ""].filter(Boolean).join("; ");
    case "claimed": return data.worker ? `by worker ${data.worker} (fence ${data.fence})` : "";
    case "finished": return move;
    case "lease_expired": return `worker ${data.worker}, attempt ${data.attempt}, ${move}`;
    case "dependency_added": case "dependency_removed": return `on ${data.depends_on}`;
    case "prefix_set": return `prefix ${data.prefix}`;
    default: return "";
  }
}

// A change reloads what is shown, at most once a second however many events arrive,
// and never two reloads at once (one more follows if events came during a reload).
function refresh() {
  const r = state.refresh;
  if (r.running) {
    r.again = true;
    return;
  }
  if (r.timer) return;
  r.timer = setTimeout(async () => {
    r.timer = null;
    r.running = true;
    await Promise.all([loadAgents(), loadTasks(), loadDetail()]).catch(showError);
    r.running = false;
    if (r.again) {
      r.again = false;
      refresh();
    }
  }, 1000);
}

function showError(error) {
  $("action-error").textContent = error.message;
}

// The event stream, read with fetch (EventSource cannot send a token): every event
// asks for a refresh; a dropped stream is opened again after two seconds.
async function follow() {
  const live = $("live");
  const lost = () => {
    live.textContent = "reconnecting…";
    live.classList.remove("on");
    setTimeout(follow, 2000);
  };
  let response;
  try {
    response = await fetch("/api/events/stream?after=now", withToken({ headers: { Accept: "text/event-stream" } }));
  } catch (error) {
    return lost();
  }
  if (response.status === 401 || response.status === 403) {
    // A token refused: ask for one rather than retry for ever.
    live.textContent = "needs a token";
    live.classList.remove("on");
    askForToken("The live stream needs an admin token.");
    return;
  }
  if (!response.ok || !response.body) return lost();
  live.textContent = "live";
  live.classList.add("on");
  refresh(); // whatever changed between the first load and the stream's start
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let pending = "";
  for (;;) {
    let chunk;
    try {
      chunk = await reader.read();
    } catch (error) {
      return lost();
    }
    if (chunk.done) return lost();
    pending += decoder.decode(chunk.value, { stream: true });
    const messages = pending.split("\n\n");
    pending = messages.pop();
    if (messages.some((m) => m.split("\n").some((line) => line.startsWith("data:")))) refresh();
  }
}

async function act(action) {
  const { agent, id } = state.selected;
  const path = `/api/backlogs/${encodeURIComponent(agent)}/${encodeURIComponent(id)}`;
  const patch = (body) => api(path, { method: "PATCH", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  if (action === "requeue") {
    if (!confirm(`Put ${id} back in the queue? A complete task loses its result.`)) return;
    await patch({ status: "queued" });
  }
  if (action === "block") {
    const reason = prompt("Why is it blocked?");
    if (!reason) return;
    await patch({ status: "blocked", blocker: reason });
  }
  if (action === "priority") {
    const priority = prompt("New priority, 1 (highest) to 10 (lowest):");
    if (!priority) return;
    await patch({ priority: Number(priority) });
  }
  if (action === "delete") {
    if (!confirm(`Delete ${id} for good?`)) return;
    await api(path, { method: "DELETE" });
  }
  refresh();
}

function start() {
  for (const id of ["filter-status", "filter-priority", "filter-agent"]) {
    $(id).addEventListener("change", () => {
      state.offset = 0;
      loadTasks().catch(showError);
    });
  }
  // Enter in the agent field filters; the form is never sent anywhere.
  $("filters").addEventListener("submit", (event) => {
    event.preventDefault();
    state.offset = 0;
    loadTasks().catch(showError);
  });
  $("agents-prev").addEventListener("click", () => {
    state.agentsOffset = Math.max(0, state.agentsOffset - AGENTS);
    loadAgents().catch(showError);
  });
  $("agents-next").addEventListener("click", () => {
    state.agentsOffset += AGENTS;
    loadAgents().catch(showError);
  });
  $("prev").addEventListener("click", () => {
    state.offset = Math.max(0, state.offset - PAGE);
    loadTasks().catch(showError);
  });
  $("next").addEventListener("click", () => {
    state.offset += PAGE;
    loadTasks().catch(showError);
  });
  $("close").addEventListener("click", () => {
    state.selected = null;
    loadDetail();
    loadTasks().catch(showError);
  });
  for (const button of $("actions").querySelectorAll("button")) {
    button.addEventListener("click", () => {
      $("action-error").textContent = "";
      act(button.dataset.action).catch(showError);
    });
  }
  Promise.all([loadAgents(), loadTasks()]).catch(showError).then(follow);
}

start();
