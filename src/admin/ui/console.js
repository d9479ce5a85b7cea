// tenant-gateway console: a client of the admin API (/v1, /metrics) on the
// listener that serves it. No framework and no build step; every value from
// the API reaches the page through textContent, never as HTML.
"use strict";

const TOKEN_KEY = "tenant-gateway.token";
/** Tenants loaded for the list and its search (10 pages of the API's maximum). */
const PAGE = 1000;
const MAX_PAGES = 10;

const $ = (id) => document.getElementById(id);

// ---- The admin API --------------------------------------------------------

class ApiError extends Error {
  constructor(status, body) {
    const error = (body && body.error) || {};
    super(error.message || `HTTP ${status}`);
    this.status = status;
    this.code = error.code;
  }
}

function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

/** One admin call; bodies go as JSON (the admin API takes no other type). */
async function api(method, path, body, bearer = token()) {
  const headers = { Accept: "application/json" };
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  const init = { method, headers, cache: "no-store", credentials: "omit" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  const text = await response.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch (_) {
    json = null;
  }
  if (!response.ok) {
    const error = new ApiError(response.status, json);
    if (response.status === 401 && bearer === token()) signOut("The gateway refused the token: sign in again.");
    throw error;
  }
  return json;
}

const enc = encodeURIComponent;

// ---- Small DOM helpers ----------------------------------------------------

/** An element with text or children, e.g. el("td", {}, "x"). */
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (name === "class") node.className = value;
    else if (name === "onclick") node.addEventListener("click", value);
    else node.setAttribute(name, value);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

function badge(text, kind) {
  return el("span", { class: `badge ${kind}` }, text);
}

function fill(tbody, rows) {
  tbody.replaceChildren(...rows);
}

let noticeTimer = null;
function notice(message, isError = false) {
  const box = $("notice");
  box.textContent = message;
  box.className = isError ? "error" : "";
  box.hidden = false;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => (box.hidden = true), isError ? 10000 : 4000);
}

/** Runs an action, showing its error (if any) in the notice line. */
async function attempt(action) {
  try {
    return await action();
  } catch (e) {
    if (!(e instanceof ApiError && e.status === 401)) notice(e.message, true);
    return undefined;
  }
}

// ---- Signing in -----------------------------------------------------------

async function signIn(event) {
  event.preventDefault();
  const candidate = $("token").value.trim();
  const error = $("login-error");
  error.hidden = true;
  try {
    await api("GET", "/v1/tenants?limit=1", undefined, candidate);
  } catch (e) {
    error.textContent =
      e.status === 401 ? "Token refused: the gateway answered 401 Unauthorized." : `Cannot sign in: ${e.message}`;
    error.hidden = false;
    return;
  }
  sessionStorage.setItem(TOKEN_KEY, candidate);
  $("token").value = "";
  showApp();
}

function signOut(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  stopPolling();
  $("app").hidden = true;
  $("nav").hidden = true;
  $("logout").hidden = true;
  $("login").hidden = false;
  const error = $("login-error");
  error.textContent = message || "";
  error.hidden = !message;
  $("token").focus();
}

function showApp() {
  $("login").hidden = true;
  $("login-error").hidden = true;
  $("app").hidden = false;
  $("nav").hidden = false;
  $("logout").hidden = false;
  route();
}

// ---- Pages ----------------------------------------------------------------

const PAGES = ["tenants", "pools", "traffic", "jobs"];
let pollTimer = null;

function stopPolling() {
  clearInterval(pollTimer);
  pollTimer = null;
}

function poll(task, ms) {
  stopPolling();
  task();
  pollTimer = setInterval(() => {
    if (!document.hidden) task();
  }, ms);
}

function route() {
  if (token() === null) return;
  const name = location.hash.replace(/^#\/?/, "").split("/")[0];
  const page = PAGES.includes(name) ? name : "tenants";
  for (const p of PAGES) $(`page-${p}`).hidden = p !== page;
  for (const link of document.querySelectorAll("#nav a")) {
    if (link.dataset.page === page) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  stopPolling();
  if (page === "tenants") loadTenants();
  if (page === "pools") poll(loadPools, 5000);
  if (page === "traffic") {
    previous = null;
    poll(loadTraffic, 2000);
  }
  if (page === "jobs") poll(loadJobs, 2000);
}

// ---- Tenants --------------------------------------------------------------

let tenants = [];
let selected = null;

async function loadTenants() {
  await attempt(async () => {
    const all = [];
    let after = null;
    let pages = 0;
    do {
      const query = after === null ? `limit=${PAGE}` : `limit=${PAGE}&after=${enc(after)}`;
      const page = await api("GET", `/v1/tenants?${query}`);
      all.push(...page.tenants);
      after = page.next;
      pages += 1;
    } while (after !== null && pages < MAX_PAGES);
    tenants = all;
    const more = $("tenants-more");
    more.hidden = after === null;
    more.textContent = `Showing the first ${all.length} tenants; use the API or the CLI for the rest.`;
    renderTenants();
    loadPoolNames();
  });
  if (selected !== null) await showTenant(selected);
}

function matches(tenant, query) {
  if (!query) return true;
  const q = query.toLowerCase();
  return (
    tenant.id.toLowerCase().includes(q) ||
    tenant.name.toLowerCase().includes(q) ||
    tenant.domains.some((d) => d.domain.includes(q))
  );
}

function renderTenants() {
  const query = $("tenant-search").value.trim();
  const shown = tenants.filter((t) => matches(t, query));
  $("tenant-count").textContent = `${shown.length} of ${tenants.length}`;
  fill(
    $("tenant-table").tBodies[0],
    shown.map((t) => {
      const active = t.status === "active";
      const row = el(
        "tr",
        { "data-tenant": t.id, class: t.id === selected ? "selected" : "" },
        el("td", {}, el("a", { href: `#/tenants/${enc(t.id)}`, onclick: (e) => select(e, t.id) }, t.id)),
        el("td", {}, t.name),
        el("td", {}, badge(t.status, active ? "ok" : "bad")),
        el("td", {}, t.domains.map((d) => d.domain).join(", ")),
        el("td", {}, t.pool || (t.plan ? `plan ${t.plan}` : "default")),
        el(
          "td",
          { class: "actions" },
          el(
            "button",
            { type: "button", class: "quiet", onclick: () => setStatus(t.id, active ? "suspended" : "active") },
            active ? "Suspend" : "Resume",
          ),
          " ",
          el("button", { type: "button", class: "danger", onclick: () => askDelete(t.id) }, "Delete…"),
        ),
      );
      return row;
    }),
  );
}

function select(event, id) {
  event.preventDefault();
  selected = id;
  renderTenants();
  showTenant(id);
}

async function loadPoolNames() {
  const list = await api("GET", "/v1/pools");
  const choice = $("create-pool");
  const current = choice.value;
  choice.replaceChildren(
    el("option", { value: "" }, "(plan's pool, else default)"),
    ...list.pools.map((p) => el("option", { value: p.name }, p.name)),
  );
  choice.value = current;
}

async function createTenant(event) {
  event.preventDefault();
  const form = event.target;
  const spec = {
    id: $("create-id").value.trim(),
    name: $("create-name").value.trim(),
    domains: $("create-domains")
      .value.split(",")
      .map((d) => d.trim())
      .filter((d) => d),
  };
  if ($("create-pool").value) spec.pool = $("create-pool").value;
  if ($("create-plan").value.trim()) spec.plan = $("create-plan").value.trim();
  const created = await attempt(() => api("POST", "/v1/tenants", spec));
  if (!created) return;
  let message = `Tenant ${created.id} created`;
  if (created.database_role) {
    // Shown once by the API: the operator must copy it now.
    message += `; its database role ${created.database_role.name} has the password ${created.database_role.password} (shown once)`;
  }
  notice(message);
  form.reset();
  selected = created.id;
  await loadTenants();
}

async function setStatus(id, status) {
  const updated = await attempt(() => api("PATCH", `/v1/tenants/${enc(id)}`, { status }));
  if (!updated) return;
  notice(`Tenant ${id} is ${updated.status}`);
  await loadTenants();
}

// The tenant panel: facts, actions, domains with their certificate states.

async function showTenant(id) {
  const panel = $("tenant-detail");
  const record = await attempt(() => api("GET", `/v1/tenants/${enc(id)}`));
  if (!record) {
    panel.hidden = true;
    selected = null;
    return;
  }
  panel.hidden = false;
  panel.dataset.tenant = id;
  $("detail-title").textContent = `Tenant ${record.id}`;
  const facts = [
    ["Name", record.name],
    ["Status", badge(record.status, record.status === "active" ? "ok" : "bad")],
    ["Isolation", `${record.isolation} (${record.schema})`],
    ["Pool", record.pool || "(plan's pool, else default)"],
    ["Plan", record.plan || "–"],
    ["Cluster", record.cluster || "default"],
    ["Created", record.created_at],
  ];
  $("detail-facts").replaceChildren(...facts.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
  $("detail-suspend").hidden = record.status !== "active";
  $("detail-resume").hidden = record.status === "active";
  const rows = await Promise.all(record.domains.map((d) => domainRow(d)));
  fill($("domain-table").tBodies[0], rows);
}

const CERT_KIND = { valid: "ok", pending: "warn", failed: "bad", none: "none" };

async function domainRow(entry) {
  let cert = null;
  try {
    cert = (await api("GET", `/v1/domains/${enc(entry.domain)}`)).certificate;
  } catch (e) {
    cert = { state: "failed", error: e.message };
  }
  const state = cert ? cert.state : "none";
  const certCell = el("td", {}, badge(state === "none" ? "no ACME certificate" : state, CERT_KIND[state] || "none"));
  if (cert && cert.error) certCell.append(el("div", { class: "muted" }, cert.error));
  return el(
    "tr",
    { "data-domain": entry.domain },
    el("td", {}, entry.domain),
    el("td", {}, entry.is_primary ? "yes" : ""),
    certCell,
    el("td", {}, (cert && cert.not_after) || "–"),
    el(
      "td",
      {},
      el("button", { type: "button", class: "quiet", onclick: () => removeDomain(entry.domain) }, "Remove"),
    ),
  );
}

async function addDomain(event) {
  event.preventDefault();
  const id = $("tenant-detail").dataset.tenant;
  const body = { domain: $("domain-name").value.trim(), primary: $("domain-primary").checked };
  if ($("domain-issue").checked) body.tls = "issue";
  const added = await attempt(() => api("POST", `/v1/tenants/${enc(id)}/domains`, body));
  if (!added) return;
  notice(`${added.domain} now routes to ${id}`);
  event.target.reset();
  await loadTenants();
}

async function removeDomain(domain) {
  const done = await attempt(() => api("DELETE", `/v1/domains/${enc(domain)}`).then(() => true));
  if (!done) return;
  notice(`${domain} is no longer routed`);
  await loadTenants();
}

// Deleting asks for the id to be typed: a click alone never deletes.

function askDelete(id) {
  const dialog = $("delete-dialog");
  dialog.dataset.tenant = id;
  $("delete-which").textContent = id;
  $("delete-confirm").value = "";
  $("delete-drop").checked = false;
  $("delete-ok").disabled = true;
  dialog.showModal();
  $("delete-confirm").focus();
}

async function confirmDelete(event) {
  event.preventDefault();
  const dialog = $("delete-dialog");
  const id = dialog.dataset.tenant;
  if ($("delete-confirm").value !== id) return;
  dialog.close();
  const query = $("delete-drop").checked ? "?drop=true" : "";
  const done = await attempt(() => api("DELETE", `/v1/tenants/${enc(id)}${query}`).then(() => true));
  if (!done) return;
  notice(`Tenant ${id} deleted`);
  if (selected === id) {
    selected = null;
    $("tenant-detail").hidden = true;
  }
  await loadTenants();
}

// ---- Pools ----------------------------------------------------------------

async function loadPools() {
  const list = await attempt(() => api("GET", "/v1/pools"));
  if (!list) return;
  $("pool-list").replaceChildren(
    ...list.pools.map((pool) => {
      const total = pool.backends.length;
      const kind = pool.available === total ? "ok" : pool.available === 0 ? "bad" : "warn";
      return el(
        "section",
        { class: "card pool", "data-pool": pool.name },
        el(
          "h3",
          {},
          pool.name,
          badge(`${pool.available}/${total} taking traffic`, kind),
          el("span", { class: "muted" }, pool.health_checked ? "health-checked" : "no active checks"),
        ),
        el(
          "table",
          {},
          el(
            "thead",
            {},
            el(
              "tr",
              {},
              el("th", {}, "Backend"),
              el("th", { class: "num" }, "Weight"),
              el("th", {}, "Health"),
              el("th", { class: "num" }, "In flight"),
            ),
          ),
          el(
            "tbody",
            {},
            ...pool.backends.map((b) =>
              el(
                "tr",
                { "data-backend": b.url },
                el("td", {}, b.url),
                el("td", { class: "num" }, b.weight),
                el("td", {}, backendBadge(b)),
                el("td", { class: "num" }, b.in_flight),
              ),
            ),
          ),
        ),
      );
    }),
  );
}

function backendBadge(backend) {
  if (!backend.healthy) return badge("unhealthy", "bad");
  if (backend.ejected) return badge("ejected", "warn");
  return badge("healthy", "ok");
}

// ---- Traffic (from /metrics) ------------------------------------------------

let previous = null;

/** The samples of a Prometheus text exposition: [{name, labels, value}]. */
function parseMetrics(text) {
  const samples = [];
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels = {};
    for (const l of (m[2] || "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[l[1]] = l[2].replace(/\\(.)/g, (_, c) => (c === "n" ? "\n" : c));
    }
    samples.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return samples;
}

function summarize(samples) {
  const sum = { requests: 0, errors: 0, inFlight: 0, tenants: new Map(), perTenant: false };
  const tenant = (id) => {
    if (!sum.tenants.has(id)) sum.tenants.set(id, { requests: 0, errors: 0 });
    return sum.tenants.get(id);
  };
  for (const s of samples) {
    if (s.name === "tenant_gateway_requests_total") {
      sum.requests += s.value;
      if (s.labels.class === "5xx") sum.errors += s.value;
    } else if (s.name === "tenant_gateway_in_flight_requests") {
      sum.inFlight = s.value;
    } else if (s.name === "tenant_gateway_tenant_requests_total") {
      sum.perTenant = true;
      tenant(s.labels.tenant).requests = s.value;
    } else if (s.name === "tenant_gateway_tenant_errors_total") {
      tenant(s.labels.tenant).errors = s.value;
    }
  }
  return sum;
}

const rate = (now, before, seconds) => (before === undefined ? 0 : Math.max(0, now - before) / seconds);
const fmt = (n) => (n >= 100 ? n.toFixed(0) : n.toFixed(1));

async function loadTraffic() {
  const text = await attempt(async () => {
    const response = await fetch("/metrics", { cache: "no-store", credentials: "omit" });
    if (!response.ok) throw new Error(`/metrics answered ${response.status}`);
    return response.text();
  });
  if (text === undefined) return;
  const now = { at: performance.now(), ...summarize(parseMetrics(text)) };
  const before = previous;
  previous = now;
  const seconds = before ? (now.at - before.at) / 1000 : 1;
  $("in-flight").textContent = now.inFlight;
  $("total-rps").textContent = before ? fmt(rate(now.requests, before.requests, seconds)) : "…";
  $("total-eps").textContent = before ? fmt(rate(now.errors, before.errors, seconds)) : "…";
  $("per-tenant-off").hidden = now.perTenant;
  const rows = [...now.tenants.entries()].map(([id, t]) => {
    const old = before && before.tenants.get(id);
    return {
      id,
      ...t,
      rps: before ? rate(t.requests, old ? old.requests : 0, seconds) : 0,
      eps: before ? rate(t.errors, old ? old.errors : 0, seconds) : 0,
    };
  });
  rows.sort((a, b) => b.rps - a.rps || b.requests - a.requests || a.id.localeCompare(b.id));
  fill(
    $("traffic-table").tBodies[0],
    rows.map((r) =>
      el(
        "tr",
        { "data-tenant": r.id },
        el("td", {}, r.id),
        el("td", { class: "num" }, fmt(r.rps)),
        el("td", { class: "num" }, fmt(r.eps)),
        el("td", { class: "num" }, r.requests),
        el("td", { class: "num" }, r.errors),
      ),
    ),
  );
}

// ---- Migration jobs ---------------------------------------------------------

const JOB_KIND = { running: "warn", finished: "ok", failed: "bad" };

async function loadJobs() {
  const list = await attempt(() => api("GET", "/v1/jobs"));
  if (!list) return;
  $("jobs-empty").hidden = list.jobs.length > 0;
  fill(
    $("job-table").tBodies[0],
    list.jobs.map((job) => {
      const { total, done, failed } = job.progress;
      const bar = el("progress", { max: String(Math.max(total, 1)), value: String(done) });
      const failedCell = el("td", {}, failed ? `${failed}: ${job.failed_tenants.join(", ")}` : "0");
      if (job.error) failedCell.append(el("div", { class: "error" }, job.error));
      return el(
        "tr",
        { "data-job": job.id },
        el("td", {}, el("button", { type: "button", class: "quiet", onclick: () => showJob(job.id) }, `#${job.id}`)),
        el("td", {}, job.kind),
        el("td", {}, badge(job.status, JOB_KIND[job.status] || "none")),
        el("td", {}, bar, ` ${done} / ${total}`),
        failedCell,
      );
    }),
  );
}

/** Failed tenants shown in a job's panel (a job's results list every tenant). */
const FAILURES_SHOWN = 100;

async function showJob(id) {
  const job = await attempt(() => api("GET", `/v1/jobs/${id}`));
  if (!job) return;
  const results = job.results || [];
  const failed = results.filter((r) => r.error);
  const migrated = results.filter((r) => !r.error && r.applied.length > 0).length;
  $("job-detail").hidden = false;
  $("job-detail").dataset.job = id;
  $("job-detail-title").textContent = `Job #${job.id} (${job.kind}, ${job.status})`;
  $("job-detail-summary").textContent =
    job.status === "running"
      ? `${job.progress.done} of ${job.progress.total} tenants done so far.`
      : `${migrated} tenants migrated, ${results.length - migrated - failed.length} already up to date, ${failed.length} failed.` +
        (job.error ? ` The job could not run: ${job.error}` : "");
  fill(
    $("job-failures").tBodies[0],
    failed.slice(0, FAILURES_SHOWN).map((r) =>
      el("tr", { "data-tenant": r.tenant }, el("td", {}, r.tenant), el("td", {}, r.error)),
    ),
  );
}

async function migrateAll() {
  const job = await attempt(() => api("POST", "/v1/migrate"));
  if (!job) return;
  notice(`Migration job #${job.id} started`);
  await loadJobs();
}

// ---- Wiring -----------------------------------------------------------------

document.addEventListener("DOMContentLoaded", () => {
  $("login-form").addEventListener("submit", signIn);
  $("logout").addEventListener("click", () => signOut());
  $("tenant-search").addEventListener("input", renderTenants);
  $("tenants-refresh").addEventListener("click", loadTenants);
  $("create-form").addEventListener("submit", createTenant);
  $("domain-form").addEventListener("submit", addDomain);
  $("detail-suspend").addEventListener("click", () => setStatus(selected, "suspended"));
  $("detail-resume").addEventListener("click", () => setStatus(selected, "active"));
  $("detail-delete").addEventListener("click", () => askDelete(selected));
  $("delete-confirm").addEventListener("input", () => {
    $("delete-ok").disabled = $("delete-confirm").value !== $("delete-dialog").dataset.tenant;
  });
  $("delete-form").addEventListener("submit", confirmDelete);
  $("delete-cancel").addEventListener("click", () => $("delete-dialog").close());
  $("migrate-all").addEventListener("click", migrateAll);
  window.addEventListener("hashchange", route);
  if (token() === null) signOut();
  else showApp();
});
