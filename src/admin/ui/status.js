// The live pages: pools and their backends' health (GET /v1/pools), traffic
// per tenant (from /metrics), and migration jobs with their progress.

import { $, api, attempt, badge, el, fill, notice } from "./api.js";

// ---- Pools ----------------------------------------------------------------

export async function loadPools() {
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

/** Starts the rates afresh (the page was away). */
export function resetTraffic() {
  previous = null;
}

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

export async function loadTraffic() {
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

export async function loadJobs() {
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

export function wireStatus() {
  $("migrate-all").addEventListener("click", migrateAll);
}
