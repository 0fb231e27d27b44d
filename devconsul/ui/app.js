// devconsul web UI: services, instances and checks, nodes, and a read-only KV browser.
// Plain DOM, no dependencies. Every view follows its data with Consul blocking
// queries (?index=&wait=, X-Consul-Index), so changes show up without reloads.
// All data is inserted as text nodes; nothing from the API goes through innerHTML.
// With ACLs on (-acl-token), the UI works like Consul's: a token kept in
// localStorage ("consul:token", {"SecretID": ...}) goes out as X-Consul-Token on
// every call; a 403 shows an "ACL token required" state and a token form in the header.
"use strict";

const WAIT = "55s"; // blocking-query wait; the agent adds jitter on top
const STATUS_ORDER = ["maintenance", "critical", "warning", "passing"];

// ---- DOM helpers -------------------------------------------------------------

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") el.className = value;
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
}

function badge(status, text) {
  return h("span", { class: `badge ${status}` }, text === undefined ? status : text);
}

function mono(text) {
  return h("span", { class: "mono" }, text);
}

function chips(values) {
  if (!values || values.length === 0) return h("span", { class: "muted" }, "none");
  return h("span", { class: "chips" }, values.map((v) => h("span", { class: "chip" }, v)));
}

function metaList(meta) {
  const keys = Object.keys(meta || {}).sort();
  if (keys.length === 0) return h("span", { class: "muted" }, "none");
  return h("span", { class: "chips" }, keys.map((k) => h("span", { class: "chip kv" }, mono(k), " = ", mono(meta[k]))));
}

function empty(text) {
  return h("p", { class: "empty" }, text);
}

function decode(text) {
  try { return decodeURIComponent(text); } catch (err) { return text; }
}

function encodePath(path) {
  return path.split("/").map(encodeURIComponent).join("/");
}

function sleep(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => { clearTimeout(timer); resolve(); }, { once: true });
  });
}

// ---- health rules (Consul's aggregation: maintenance > critical > warning > passing) ----

function isMaintenance(check) {
  return check.CheckID === "_node_maintenance" || String(check.CheckID).startsWith("_service_maintenance:");
}

function checkStatus(check) {
  return isMaintenance(check) ? "maintenance" : check.Status;
}

function aggregate(checks) {
  const statuses = new Set((checks || []).map(checkStatus));
  return STATUS_ORDER.find((s) => statuses.has(s)) || "passing";
}

function tally(checks) {
  const counts = { passing: 0, warning: 0, critical: 0 };
  for (const check of checks || []) if (check.Status in counts) counts[check.Status] += 1;
  return counts;
}

function tallyBadges(counts) {
  return h("span", { class: "tally" },
    ["passing", "warning", "critical"].map((s) =>
      badge(counts[s] ? s : "zero", `${counts[s] || 0} ${s}`)));
}

// ---- last change of a check -----------------------------------------------------
// Consul's API has no "last status change" time. The UI remembers, per check, when
// it first saw the current status: exact when it saw the change happen, otherwise
// "at or before" the moment the page first saw the check.

const seenChecks = new Map();

function noteCheck(check) {
  const key = `${check.Node}/${check.CheckID}`;
  const seen = seenChecks.get(key);
  if (!seen) {
    seenChecks.set(key, { status: check.Status, since: Date.now(), exact: false });
  } else if (seen.status !== check.Status) {
    seenChecks.set(key, { status: check.Status, since: Date.now(), exact: true });
  }
  return seenChecks.get(key);
}

function ago(ms) {
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m ago`;
}

function lastChange(check) {
  const seen = noteCheck(check);
  return h("span", { class: "since", "data-since": seen.since, "data-exact": seen.exact ? "1" : "0",
    title: `ModifyIndex ${check.ModifyIndex ?? "?"}` }, sinceText(seen.since, seen.exact));
}

function sinceText(since, exact) {
  const clock = new Date(since).toLocaleTimeString();
  return exact ? `${clock} (${ago(since)})` : `at or before ${clock}`;
}

setInterval(() => {
  for (const el of document.querySelectorAll(".since[data-exact='1']")) {
    el.textContent = sinceText(Number(el.dataset.since), true);
  }
}, 5000);

// ---- blocking queries ---------------------------------------------------------

function setLive(ok, detail, label) {
  const el = document.getElementById("live");
  el.className = `live ${ok ? "ok" : "down"}`;
  el.textContent = ok ? "live" : label || "reconnecting";
  el.title = ok ? "Following changes through blocking queries" : label ? detail : `Agent unreachable: ${detail}`;
}

class ApiError extends Error {
  constructor(status, body) {
    super(`${status}: ${body}`);
    this.status = status;
    this.body = body;
  }
}

// ---- ACL token (stored like Consul's UI does) -----------------------------------

const TOKEN_KEY = "consul:token";

function storedToken() {
  try {
    const raw = localStorage.getItem(TOKEN_KEY);
    if (!raw) return "";
    const parsed = JSON.parse(raw);
    return typeof parsed === "string" ? parsed : parsed?.SecretID || "";
  } catch (err) {
    return localStorage.getItem(TOKEN_KEY) || ""; // a bare token string
  }
}

function storeToken(token) {
  if (token) localStorage.setItem(TOKEN_KEY, JSON.stringify({ SecretID: token }));
  else localStorage.removeItem(TOKEN_KEY);
}

function apiHeaders(token = storedToken()) {
  const headers = { Accept: "application/json" };
  if (token) headers["X-Consul-Token"] = token;
  return headers;
}

function isAclDenied(err) {
  return err instanceof ApiError && err.status === 403;
}

// The header's token area: a form while a token is needed, "token set" otherwise.
function renderAcl(state, message) {
  const box = document.getElementById("acl");
  document.body.dataset.acl = state;
  if (state === "required") {
    const existing = document.getElementById("acl-form");
    if (existing) { // keep what is being typed; several views may answer 403
      if (message) replace(existing.querySelector(".acl-note"), message);
      return;
    }
    const input = h("input", { type: "password", name: "token", placeholder: "ACL token",
      autocomplete: "off", "aria-label": "ACL token" });
    const note = h("span", { class: "acl-note" }, message || "");
    const form = h("form", { id: "acl-form", class: "acl-form" },
      h("span", { class: "acl-label" }, "ACL token required"), input,
      h("button", { type: "submit" }, "Use token"), note);
    form.addEventListener("submit", (event) => { event.preventDefault(); useToken(input.value.trim(), note); });
    replace(box, form);
    setLive(false, "ACL token required", "locked");
  } else if (storedToken()) {
    const forget = h("button", { type: "button", class: "link" }, "forget");
    forget.addEventListener("click", () => { storeToken(""); start(); });
    replace(box, h("span", { class: "acl-set", title: "Sent as X-Consul-Token" }, "token set · ", forget));
  } else {
    replace(box);
  }
}

async function useToken(token, note) {
  if (!token) { replace(note, "Enter a token."); return; }
  replace(note, "Checking…");
  try {
    // Consul's UI checks a token the same way before keeping it.
    const res = await fetch("/v1/acl/token/self", { headers: apiHeaders(token) });
    if (res.status === 403) { replace(note, `Rejected: ${(await res.text()).trim()}`); return; }
  } catch (err) {
    replace(note, `Agent unreachable: ${err.message}`);
    return;
  }
  storeToken(token);
  start();
}

function aclRequired(err) {
  const rejected = storedToken() && err.body !== "Permission denied";
  renderAcl("required", rejected ? `The stored token was rejected: ${err.body}` : "");
}

async function getJSON(path, signal) {
  const res = await fetch(path, { signal, headers: apiHeaders() });
  if (res.status === 404) return { data: null, index: Number(res.headers.get("X-Consul-Index")) || 0 };
  if (!res.ok) throw new ApiError(res.status, (await res.text()).trim());
  return { data: await res.json(), index: Number(res.headers.get("X-Consul-Index")) || 0 };
}

// Follow `path` with blocking queries, calling onData(data) whenever the index moves.
// A 404 gives data null (missing KV key). Stops when `signal` aborts.
async function follow(path, signal, onData, onError) {
  let index = 0;
  let backoff = 500;
  while (!signal.aborted) {
    const sep = path.includes("?") ? "&" : "?";
    const url = index ? `${path}${sep}index=${index}&wait=${WAIT}` : path;
    const started = Date.now();
    try {
      const { data, index: next } = await getJSON(url, signal);
      setLive(true);
      backoff = 500;
      // Render the first answer and every index move, backwards included: an agent
      // restart resets the index and we follow on from the new value.
      if (!index || next !== index) onData(data);
      const unchanged = next === index;
      index = next > 0 ? next : 0;
      if (!index) await sleep(5000, signal); // no X-Consul-Index: poll instead
      else if (unchanged && Date.now() - started < 100) await sleep(1000, signal); // no hot loop
    } catch (err) {
      if (signal.aborted) return;
      // A 4xx answer will not fix itself by asking again (a 403 waits for a token).
      if (isAclDenied(err)) aclRequired(err);
      if (err instanceof ApiError && err.status < 500) { onError(err); return; }
      setLive(false, err.message);
      onError(err);
      index = 0; // re-render from a fresh answer once the agent is back
      await sleep(backoff, signal);
      backoff = Math.min(backoff * 2, 10000);
    }
  }
}

// ---- header ------------------------------------------------------------------

async function loadAgent() {
  try {
    const { data } = await getJSON("/v1/agent/self");
    replace(document.getElementById("agent-dc"), data.Config.Datacenter);
    replace(document.getElementById("agent-node"), data.Config.NodeName);
  } catch (err) {
    if (isAclDenied(err)) aclRequired(err);
    else setLive(false, err.message);
  }
}

// ---- views ---------------------------------------------------------------------

function section(title, ...rest) {
  return h("section", { class: "view" }, h("div", { class: "view-head" }, h("h1", {}, title), rest));
}

function errorBox(err) {
  if (isAclDenied(err)) {
    return h("div", { class: "acl-required", "data-acl": "required" },
      h("h2", {}, "ACL token required"),
      h("p", {}, "This agent has ACLs enabled and answered ", mono(`403 ${err.body}`), "."),
      h("p", {}, "Enter an ACL token in the header; it is kept in this browser and sent with every request."));
  }
  return h("div", { class: "error" }, `Could not load: ${err.message}`);
}

function servicesView(root, signal) {
  const filter = h("input", { type: "search", placeholder: "Filter by name or tag", "aria-label": "Filter services" });
  const list = h("div", {}, empty("Loading services…"));
  replace(root, section("Services", filter), list);
  let services = [];
  const render = () => replace(list, servicesTable(services, filter.value.trim().toLowerCase()));
  filter.addEventListener("input", render);
  // The same endpoint Consul's own UI reads for this page.
  follow("/v1/internal/ui/services", signal, (data) => { services = data || []; render(); },
    (err) => replace(list, errorBox(err)));
}

function servicesTable(services, query) {
  const rows = services
    .filter((s) => !query || s.Name.toLowerCase().includes(query) ||
      (s.Tags || []).some((t) => t.toLowerCase().includes(query)))
    .sort((a, b) => a.Name.localeCompare(b.Name));
  if (rows.length === 0) return empty(query ? "No service matches the filter." : "No services registered.");
  return h("table", { class: "grid services" },
    h("thead", {}, h("tr", {}, h("th", {}, "Service"), h("th", {}, "Health"), h("th", { class: "num" }, "Instances"),
      h("th", {}, "Checks"), h("th", {}, "Tags"))),
    h("tbody", {}, rows.map((s) => {
      const counts = { passing: s.ChecksPassing || 0, warning: s.ChecksWarning || 0, critical: s.ChecksCritical || 0 };
      const status = counts.critical ? "critical" : counts.warning ? "warning" : "passing";
      return h("tr", { "data-service": s.Name },
        h("td", {}, h("a", { href: `#/services/${encodeURIComponent(s.Name)}`, class: "name" }, s.Name)),
        h("td", {}, badge(status)),
        h("td", { class: "num" }, String(s.InstanceCount)),
        h("td", {}, tallyBadges(counts)),
        h("td", {}, chips(s.Tags)));
    })));
}

function serviceView(root, signal, name) {
  const body = h("div", {}, empty("Loading instances…"));
  const summary = h("span", { class: "summary" });
  replace(root,
    h("p", { class: "crumbs" }, h("a", { href: "#/services" }, "Services"), " / ", mono(name)),
    section(name, summary), body);
  follow(`/v1/health/service/${encodeURIComponent(name)}`, signal, (entries) => {
    entries = (entries || []).slice().sort((a, b) => a.Service.ID.localeCompare(b.Service.ID));
    replace(summary, entries.length ? [badge(aggregate(entries.flatMap((e) => e.Checks))),
      ` ${entries.length} instance${entries.length === 1 ? "" : "s"}`] : []);
    replace(body, entries.length ? entries.map(instanceCard)
      : empty(`No instances of ${name} are registered.`));
  }, (err) => replace(body, errorBox(err)));
}

function instanceCard(entry) {
  const svc = entry.Service;
  const node = entry.Node || {};
  const address = svc.Address || node.Address || "";
  const weights = svc.Weights || {};
  return h("article", { class: "card", "data-instance": svc.ID },
    h("header", {},
      badge(aggregate(entry.Checks)),
      h("h2", { class: "mono" }, svc.ID),
      h("span", { class: "addr mono" }, `${address}:${svc.Port}`)),
    h("dl", { class: "facts" },
      h("dt", {}, "Node"), h("dd", {}, mono(node.Node || "")),
      h("dt", {}, "Address"), h("dd", {}, mono(address), svc.Address ? "" : h("span", { class: "muted" }, " (node address)")),
      h("dt", {}, "Port"), h("dd", {}, mono(String(svc.Port))),
      h("dt", {}, "Tags"), h("dd", {}, chips(svc.Tags)),
      h("dt", {}, "Meta"), h("dd", {}, metaList(svc.Meta)),
      h("dt", {}, "Weights"), h("dd", {}, `passing ${weights.Passing ?? 1} · warning ${weights.Warning ?? 1}`)),
    checksTable(entry.Checks || []));
}

function checksTable(checks) {
  if (checks.length === 0) return empty("No checks.");
  return h("table", { class: "grid checks" },
    h("thead", {}, h("tr", {}, h("th", {}, "Status"), h("th", {}, "Check"), h("th", {}, "Type"),
      h("th", {}, "Output"), h("th", {}, "Last change"))),
    h("tbody", {}, checks.map((c) => h("tr", { "data-check": c.CheckID },
      h("td", {}, badge(checkStatus(c))),
      h("td", {}, h("div", {}, c.Name), h("div", { class: "mono muted small" }, c.CheckID),
        c.ServiceID ? "" : h("div", { class: "muted small" }, "node check")),
      h("td", {}, c.Type || "—"),
      h("td", {}, c.Output ? h("pre", { class: "output" }, c.Output) : h("span", { class: "muted" }, "—")),
      h("td", {}, lastChange(c))))));
}

function nodesView(root, signal) {
  const list = h("div", {}, empty("Loading nodes…"));
  replace(root, section("Nodes"), list);
  const show = (nodes) => replace(list, nodesTable(nodes || []));
  follow("/v1/internal/ui/nodes", signal, show, (err) => replace(list, errorBox(err)));
}

function nodesTable(nodes) {
  if (nodes.length === 0) return empty("No nodes.");
  return h("table", { class: "grid nodes" },
    h("thead", {}, h("tr", {}, h("th", {}, "Node"), h("th", {}, "Node health"), h("th", {}, "Address"),
      h("th", {}, "Services"), h("th", {}, "All checks"), h("th", {}, "Meta"))),
    h("tbody", {}, nodes.slice().sort((a, b) => a.Node.localeCompare(b.Node)).map((n) => {
      const nodeChecks = (n.Checks || []).filter((c) => !c.ServiceID);
      const services = [...new Set((n.Services || []).map((s) => s.Service))].sort();
      return h("tr", { "data-node": n.Node },
        h("td", {}, h("div", { class: "name mono" }, n.Node), h("div", { class: "mono muted small" }, n.ID || "")),
        h("td", {}, badge(aggregate(nodeChecks))),
        h("td", {}, mono(n.Address)),
        h("td", {}, services.length === 0 ? h("span", { class: "muted" }, "none")
          : h("span", { class: "chips" }, services.map((s) =>
              h("a", { class: "chip", href: `#/services/${encodeURIComponent(s)}` }, s)))),
        h("td", {}, tallyBadges(tally(n.Checks))),
        h("td", {}, metaList(n.Meta)));
    })));
}

function kvCrumbs(path) {
  const parts = path === "" ? [] : path.replace(/\/$/, "").split("/");
  const crumbs = [h("a", { href: "#/kv/" }, "Key/Value")];
  parts.forEach((part, i) => {
    const prefix = `${parts.slice(0, i + 1).join("/")}/`;
    const last = i === parts.length - 1;
    crumbs.push(" / ", last ? mono(part) : h("a", { href: `#/kv/${encodePath(prefix)}`, class: "mono" }, part));
  });
  return h("p", { class: "crumbs" }, crumbs);
}

// Consul's router (Go's ServeMux) answers a path with an empty, "." or ".."
// segment with a redirect to the cleaned path, and browsers resolve "." and
// ".." themselves: such a key (written through /v1/txn) has no URL of its own.
function unreachableKey(path) {
  const segments = path.replace(/\/$/, "").split("/");
  return segments.some((s) => s === "." || s === ".." || (s === "" && segments.length > 1));
}

function kvView(root, signal, path) {
  const body = h("div", {}, empty("Loading…"));
  const isFolder = path === "" || path.endsWith("/");
  replace(root, kvCrumbs(path), section(isFolder ? (path || "Key/Value") : path.split("/").pop()), body);
  if (unreachableKey(path)) {
    replace(body, empty("Consul's HTTP API cannot read this name: its path has an empty, \".\" or \"..\" segment."));
  } else if (isFolder) {
    follow(`/v1/kv/${encodePath(path)}?keys&separator=/`, signal,
      (keys) => replace(body, kvListing(path, keys || [])), (err) => replace(body, errorBox(err)));
  } else {
    follow(`/v1/kv/${encodePath(path)}`, signal,
      (entries) => replace(body, entries && entries.length ? kvEntry(entries[0]) : empty("This key does not exist.")),
      (err) => replace(body, errorBox(err)));
  }
}

function kvListing(path, keys) {
  const children = keys.filter((k) => k !== path);
  if (children.length === 0) return empty("No keys under this prefix.");
  return h("ul", { class: "kvlist" }, children.sort().map((key) => {
    const label = key.slice(path.length);
    const folder = key.endsWith("/");
    return h("li", { class: folder ? "folder" : "key" },
      h("a", { href: `#/kv/${encodePath(key)}`, class: "mono" }, label));
  }));
}

function decodeValue(b64) {
  if (b64 === null || b64 === undefined) return { text: "", note: "empty value" };
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  try {
    return { text: new TextDecoder("utf-8", { fatal: true }).decode(bytes), note: `${bytes.length} bytes` };
  } catch (err) {
    const hex = Array.from(bytes.slice(0, 512), (b) => b.toString(16).padStart(2, "0")).join(" ");
    return { text: hex, note: `${bytes.length} bytes, not UTF-8 (hex${bytes.length > 512 ? ", first 512" : ""})` };
  }
}

function kvEntry(entry) {
  const value = decodeValue(entry.Value);
  return h("div", { class: "card" },
    h("dl", { class: "facts" },
      h("dt", {}, "Key"), h("dd", {}, mono(entry.Key)),
      h("dt", {}, "Flags"), h("dd", {}, mono(String(entry.Flags))),
      h("dt", {}, "Indexes"), h("dd", {}, `create ${entry.CreateIndex} · modify ${entry.ModifyIndex} · lock ${entry.LockIndex}`),
      entry.Session ? [h("dt", {}, "Session"), h("dd", {}, mono(entry.Session))] : [],
      h("dt", {}, "Value"), h("dd", {}, h("span", { class: "muted" }, value.note))),
    h("pre", { class: "value" }, value.text));
}

// ---- routing -------------------------------------------------------------------

let current = null;

function route() {
  if (current) current.abort();
  current = new AbortController();
  const root = document.getElementById("view");
  const hash = location.hash.replace(/^#\/?/, "");
  const [sectionName, ...rest] = hash.split("/");
  const arg = rest.join("/");
  for (const link of document.querySelectorAll("nav a")) {
    link.classList.toggle("active", link.dataset.section === (sectionName || "services"));
  }
  if (sectionName === "services" && arg) {
    serviceView(root, current.signal, decode(arg));
  } else if (sectionName === "nodes") {
    nodesView(root, current.signal);
  } else if (sectionName === "kv") {
    kvView(root, current.signal, arg.split("/").map(decode).join("/"));
  } else if (sectionName === "services" || sectionName === "") {
    servicesView(root, current.signal);
  } else {
    replace(root, empty("Unknown page."), h("a", { href: "#/services" }, "Go to services"));
  }
}

// (Re)start everything: after load, and after the token changes.
function start() {
  renderAcl("ok");
  loadAgent();
  route();
}

window.addEventListener("hashchange", route);
start();
