// The Tenants page: the list and its search, creating a tenant, suspending,
// resuming and deleting (after the id is typed), and the selected tenant's
// panel with its domains and their certificate states.

import { $, api, attempt, badge, el, enc, fill, notice, token } from "./api.js";

/** Tenants loaded for the list (10 pages of the API's maximum). */
const PAGE = 1000;
const MAX_PAGES = 10;
/** A search asks the server (every tenant, not just those loaded) for one page of matches, once typing pauses. */
const SEARCH_PAGE = 200;
const SEARCH_DELAY_MS = 250;

let tenants = [];
/** Whether `tenants` is every tenant (the list ended within MAX_PAGES). */
let listComplete = true;
let selected = null;
/** The shown search's answer, `{ query, tenants, next }`; null while the box is empty. */
let found = null;
let searchTimer = null;
/** The search in flight, aborted when the text changes (the server then stops its query). */
let searching = null;

export async function loadTenants() {
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
    listComplete = after === null;
    renderTenants();
    loadPoolNames();
  });
  if (searchQuery()) await search();
  if (selected !== null) await showTenant(selected);
}

function searchQuery() {
  return $("tenant-search").value.trim();
}

/** The box changed: an empty box shows the loaded list at once; text is searched once typing pauses. */
function searchChanged() {
  clearTimeout(searchTimer);
  if (searching) searching.abort();
  if (searchQuery()) {
    searchTimer = setTimeout(search, SEARCH_DELAY_MS);
    return;
  }
  found = null;
  renderTenants();
}

async function search() {
  const query = searchQuery();
  if (!query) return;
  if (searching) searching.abort();
  const controller = new AbortController();
  searching = controller;
  const path = `/v1/tenants?limit=${SEARCH_PAGE}&search=${enc(query)}`;
  const page = await attempt(() => api("GET", path, undefined, token(), controller.signal));
  if (controller.signal.aborted) return;
  searching = null;
  // A failed search (already reported) shows no matches, not the last query's.
  found = { query, tenants: page ? page.tenants : [], next: page ? page.next : null };
  renderTenants();
}

function renderTenants() {
  const shown = found === null ? tenants : found.tenants;
  const more = $("tenants-more");
  if (found === null) {
    $("tenant-count").textContent = `${tenants.length} tenants`;
    more.hidden = listComplete;
    more.textContent = `Showing the first ${tenants.length} tenants; search to find any of the others.`;
  } else {
    const plus = found.next === null ? "" : "+";
    $("tenant-count").textContent = `${shown.length}${plus} found`;
    more.hidden = found.next === null;
    more.textContent = `Showing the first ${shown.length} matches of “${found.query}”; type more to narrow the search.`;
  }
  $("tenant-table").dataset.search = found === null ? "" : found.query;
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

export function wireTenants() {
  $("tenant-search").addEventListener("input", searchChanged);
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
}
