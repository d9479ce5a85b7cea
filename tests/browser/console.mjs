// Drives the admin console (/ui/) in Debian's Chromium for tests/console.rs,
// which starts the gateway and passes, in the environment:
//   CONSOLE_URL    the console, e.g. http://127.0.0.1:9090/ui/
//   CONSOLE_TOKEN  the gateway's admin token
//   DATA_ADDR      the data path, host:port (requests are sent with a raw Host)
//   TENANT_GATEWAY_TEST_CHROMIUM  the browser binary (default /usr/bin/chromium)
// Usage: node console.mjs SCENARIO (see SCENARIOS at the bottom). Each step
// prints one line; any failed check throws, and the exit status is 1.
import assert from "node:assert/strict";
import http from "node:http";
import { chromium } from "playwright-core";

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run this through tests/console.rs`);
  return value;
};
const CONSOLE_URL = env("CONSOLE_URL");
const TOKEN = env("CONSOLE_TOKEN");
const [DATA_HOST, DATA_PORT] = env("DATA_ADDR").split(":");
const CHROMIUM = process.env.TENANT_GATEWAY_TEST_CHROMIUM || "/usr/bin/chromium";
/** How long a check may take to come true (the console refreshes, caches expire). */
const PATIENCE_MS = 30000;

const step = (what) => console.log(`- ${what}`);

/** `GET /` on the data path with this Host: its status and the tenant the echo backend saw. */
function dataPath(host) {
  return new Promise((resolve, reject) => {
    const req = http.get(
      { host: DATA_HOST, port: Number(DATA_PORT), path: "/", headers: { host }, agent: false },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (chunk) => (body += chunk));
        res.on("end", () => {
          let tenant = null;
          try {
            tenant = JSON.parse(body).headers["x-tenant-id"] ?? null;
          } catch (_) {
            tenant = null;
          }
          resolve({ status: res.statusCode, tenant });
        });
      },
    );
    req.on("error", reject);
    req.setTimeout(10000, () => req.destroy(new Error(`data path request for ${host} timed out`)));
  });
}

/** Polls `check` until it returns true, or fails with `what` and the last value seen. */
async function eventually(what, check) {
  const deadline = Date.now() + PATIENCE_MS;
  let last;
  for (;;) {
    last = await check();
    if (last === true) return;
    if (Date.now() > deadline) throw new Error(`${what}: still ${JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function expectRouted(host, tenant) {
  await eventually(`${host} routed to ${tenant}`, async () => {
    const answer = await dataPath(host);
    return (answer.status === 200 && answer.tenant === tenant) || answer;
  });
}

async function expectStatus(host, status) {
  await eventually(`${host} answered ${status}`, async () => {
    const answer = await dataPath(host);
    return answer.status === status || answer;
  });
}

/** A 5xx: 502 while the backend is tried, 503 once no backend of the pool is up. */
async function expectServerError(host) {
  await eventually(`${host} answered 5xx`, async () => {
    const answer = await dataPath(host);
    return answer.status >= 500 || answer;
  });
}

/** A fresh browser context (its own sessionStorage) on the console; fails on any page error or CSP report. */
async function open(browser) {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.problems = [];
  page.on("pageerror", (e) => page.problems.push(`page error: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error") page.problems.push(`console error: ${m.text()}`);
  });
  page.setDefaultTimeout(PATIENCE_MS);
  const response = await page.goto(CONSOLE_URL);
  assert.equal(response.status(), 200);
  return page;
}

/** Fails if the page reported an error we did not expect (e.g. a CSP violation). */
function assertQuiet(page, allowed = []) {
  const unexpected = page.problems.filter((p) => !allowed.some((a) => p.includes(a)));
  assert.deepEqual(unexpected, [], "the console reported errors");
}

async function signIn(page, token) {
  await page.getByLabel("Admin token").fill(token);
  await page.getByRole("button", { name: "Sign in" }).click();
}

function tenantRow(page, id) {
  return page.locator(`#tenant-table tr[data-tenant="${id}"]`);
}

async function createTenant(page, id, name, domains) {
  await page.getByLabel("Id", { exact: true }).fill(id);
  await page.getByLabel("Name", { exact: true }).fill(name);
  await page.getByLabel("Domains (comma-separated)").fill(domains.join(", "));
  await page.getByRole("button", { name: "Create tenant" }).click();
  await page.locator("#notice", { hasText: `Tenant ${id} created` }).waitFor();
  await tenantRow(page, id).waitFor();
}

// ---- Scenarios ----------------------------------------------------------------

/** Sign in (a wrong token refused), create a tenant with a domain, see it routed, suspend it and see 403. */
async function lifecycle(browser) {
  const page = await open(browser);

  step("before signing in only the sign-in form shows");
  await page.getByLabel("Admin token").waitFor();
  assert.equal(await page.getByRole("navigation").isHidden(), true, "the pages' links show before signing in");
  assert.equal(await page.locator("#app").isHidden(), true);

  step("a wrong token is refused and nothing is kept");
  await signIn(page, "not-the-token-0123456789");
  await page.locator("#login-error", { hasText: "Token refused" }).waitFor();
  assert.equal(await page.locator("#app").isHidden(), true, "the console opened with a wrong token");
  assert.equal(await page.evaluate(() => sessionStorage.length), 0);
  // The refusal shows in the browser's console as a failed request (401).
  const refused = ["401"];

  step("the right token opens the console and is kept in sessionStorage only");
  await signIn(page, TOKEN);
  await page.getByRole("heading", { name: "Tenants", exact: true }).waitFor();
  await page.getByRole("navigation").getByRole("link", { name: "Pools" }).waitFor();
  assert.equal(await page.evaluate(() => sessionStorage.getItem("tenant-gateway.token")), TOKEN);
  assert.equal(await page.evaluate(() => localStorage.length), 0);
  await page.reload();
  await page.getByRole("heading", { name: "Tenants", exact: true }).waitFor();
  assert.equal(await page.locator("#login").isHidden(), true, "asked for the token again after a reload");

  step("create tenant shop with shop.test from the console");
  await createTenant(page, "shop", "Shop", ["shop.test"]);
  await tenantRow(page, "shop").getByText("active").waitFor();

  step("shop.test is routed to shop on the data path");
  await expectRouted("shop.test", "shop");

  step("suspend shop from the console: the data path answers 403");
  await tenantRow(page, "shop").getByRole("button", { name: "Suspend" }).click();
  await tenantRow(page, "shop").getByText("suspended").waitFor();
  await expectStatus("shop.test", 403);

  step("a new tab asks for the token again");
  const other = await open(browser);
  await other.getByLabel("Admin token").waitFor();
  assert.equal(await other.locator("#app").isHidden(), true);

  step("inline script is blocked by the CSP");
  const blocked = await page.evaluate(
    () =>
      new Promise((resolve) => {
        document.addEventListener("securitypolicyviolation", (e) => resolve(e.violatedDirective), { once: true });
        const script = document.createElement("script");
        script.textContent = "window.inlineRan = true;";
        document.body.append(script);
        setTimeout(() => resolve(window.inlineRan ? "ran" : "no report"), 2000);
      }),
  );
  assert.match(blocked, /^script-src/);
  assertQuiet(page, [...refused, "Content Security Policy"]);
  assertQuiet(other);
}

/** Search, the tenant panel (domains, certificates, add a domain), pools, traffic, jobs, and delete with confirmation. */
async function pages(browser) {
  const page = await open(browser);
  await signIn(page, TOKEN);
  await page.getByRole("heading", { name: "Tenants", exact: true }).waitFor();

  step("search narrows the list by id, name or domain");
  await tenantRow(page, "acme").waitFor();
  await tenantRow(page, "globex").waitFor();
  await page.getByLabel("Search").fill("globex.t");
  await tenantRow(page, "acme").waitFor({ state: "detached" });
  await tenantRow(page, "globex").waitFor();
  await page.getByLabel("Search").fill("");
  await tenantRow(page, "acme").waitFor();

  step("the tenant panel shows its domains and their certificate state");
  await tenantRow(page, "acme").getByRole("link", { name: "acme" }).click();
  const panel = page.locator("#tenant-detail");
  await panel.getByRole("heading", { name: "Tenant acme" }).waitFor();
  await panel.locator('tr[data-domain="acme.test"]').getByText("no ACME certificate").waitFor();

  step("a domain added from the panel is routed");
  await page.getByLabel("Add a domain").fill("shop.acme.test");
  await page.getByRole("button", { name: "Add domain" }).click();
  await panel.locator('tr[data-domain="shop.acme.test"]').waitFor();
  await expectRouted("shop.acme.test", "acme");

  step("pools: the live backend is healthy, the dead one unhealthy or ejected");
  await page.getByRole("link", { name: "Pools" }).click();
  const pool = page.locator('section[data-pool="default"]');
  await pool.getByText("healthy", { exact: true }).waitFor();
  const broken = page.locator('section[data-pool="broken"]');
  await broken.waitFor();
  await expectServerError("globex.test");
  await eventually("the broken pool's backend shown as out", async () => {
    await page.waitForTimeout(500);
    const text = await broken.locator("tbody").innerText();
    return /unhealthy|ejected/.test(text) || text;
  });

  step("traffic: requests per second and errors per tenant, from the metrics");
  await page.getByRole("link", { name: "Traffic" }).click();
  const acme = page.locator('#traffic-table tr[data-tenant="acme"]');
  const globex = page.locator('#traffic-table tr[data-tenant="globex"]');
  await eventually("acme's requests per second above 0 and globex's errors per second above 0", async () => {
    await Promise.all([dataPath("acme.test"), dataPath("acme.test"), dataPath("globex.test")]);
    await page.waitForTimeout(300);
    const [acmeRate, globexErrors] = await Promise.all([
      acme.locator("td").nth(1).innerText().catch(() => "missing"),
      globex.locator("td").nth(2).innerText().catch(() => "missing"),
    ]);
    return (Number(acmeRate) > 0 && Number(globexErrors) > 0) || { acmeRate, globexErrors };
  });
  assert.notEqual(await page.locator("#total-rps").innerText(), "–");
  assert.equal(await page.locator("#per-tenant-off").isHidden(), true);

  step("jobs: none has run on this store");
  await page.getByRole("link", { name: "Jobs" }).click();
  await page.locator("#jobs-empty").waitFor();

  step("delete asks for the id: cancel keeps the tenant, confirming removes it");
  await page.getByRole("link", { name: "Tenants" }).click();
  await tenantRow(page, "globex").getByRole("button", { name: "Delete…" }).click();
  const dialog = page.getByRole("dialog");
  await dialog.waitFor();
  const confirm = dialog.getByRole("button", { name: "Delete", exact: true });
  assert.equal(await confirm.isDisabled(), true, "delete allowed before the id was typed");
  await dialog.getByRole("button", { name: "Cancel" }).click();
  await dialog.waitFor({ state: "hidden" });
  await expectServerError("globex.test");
  await tenantRow(page, "globex").getByRole("button", { name: "Delete…" }).click();
  await dialog.getByLabel("Tenant id").fill("globe");
  assert.equal(await confirm.isDisabled(), true, "delete allowed with the wrong id typed");
  await dialog.getByLabel("Tenant id").fill("globex");
  await confirm.click();
  await page.locator("#notice", { hasText: "Tenant globex deleted" }).waitFor();
  await tenantRow(page, "globex").waitFor({ state: "detached" });
  await expectStatus("globex.test", 404);
  assertQuiet(page);
}

/** Search asks the server: it finds a tenant beyond the 10,000 the list loaded; an empty box shows the list again. */
async function search(browser) {
  const page = await open(browser);
  await signIn(page, TOKEN);
  await page.getByRole("heading", { name: "Tenants", exact: true }).waitFor();
  const rows = page.locator("#tenant-table tbody tr");
  // By id: looking it up by its label among 10,000 rows outlasted PATIENCE_MS.
  const box = page.locator("#tenant-search");
  const searches = [];
  page.on("request", (r) => {
    const text = new URL(r.url()).searchParams.get("search");
    if (text !== null) searches.push(text);
  });

  step("the list loads the first 10,000 tenants and says there are more");
  await page.locator("#tenants-more", { hasText: "Showing the first 10000 tenants" }).waitFor();
  assert.equal(await rows.count(), 10000);
  assert.equal(await tenantRow(page, "zeta-needle").count(), 0, "the 10,001st tenant was loaded");
  assert.deepEqual(searches, [], "searched before anything was typed");

  step("a search by domain asks the server and finds the tenant the list did not load");
  await box.fill("NEEDLE.example");
  await tenantRow(page, "zeta-needle").waitFor();
  assert.equal(await rows.count(), 1);
  assert.equal(await page.locator("#tenant-count").innerText(), "1 found");
  assert.deepEqual(searches, ["NEEDLE.example"]);

  step("typing a word sends one search once typing pauses, and shows its answer");
  await box.fill("");
  await tenantRow(page, "t00000").waitFor();
  searches.length = 0;
  await box.pressSequentially("t0999", { delay: 20 });
  await page.locator('#tenant-table[data-search="t0999"]').waitFor();
  assert.equal(await rows.count(), 10);
  assert.equal(searches.at(-1), "t0999");
  assert.ok(searches.length < 5, `a search per key: ${JSON.stringify(searches)}`);
  await tenantRow(page, "t09990").waitFor();

  step("an empty box shows the loaded list again");
  await box.fill("");
  await tenantRow(page, "t00000").waitFor();
  assert.equal(await rows.count(), 10000);
  assertQuiet(page);
}

/** With a PostgreSQL store: start a migration of every tenant (one of three fails) and follow it to the end. */
async function jobs(browser) {
  const page = await open(browser);
  await signIn(page, TOKEN);
  await page.getByRole("link", { name: "Jobs" }).click();
  await page.locator("#jobs-empty").waitFor();

  step("start a migration of every tenant and see its progress to the end");
  await page.getByRole("button", { name: "Migrate all tenants" }).click();
  const row = page.locator("#job-table tr[data-job]").first();
  await row.getByText("finished").waitFor();
  const progress = row.locator("progress");
  const [value, max] = [await progress.getAttribute("value"), await progress.getAttribute("max")];
  assert.equal(value, max, "a finished job's bar is full");
  assert.match(await row.innerText(), /3 \/ 3/);
  assert.match(await row.locator("td").nth(4).innerText(), /^1: bravo$/);

  step("the job's panel names the failed tenant and why");
  await row.getByRole("button", { name: /^#\d+$/ }).click();
  const panel = page.locator("#job-detail");
  await panel.getByText("2 tenants migrated, 0 already up to date, 1 failed.").waitFor();
  const failure = await panel.locator('tr[data-tenant="bravo"]').innerText();
  assert.match(failure, /0002_orders\.sql/);
  assert.match(failure, /already exists/);
  assertQuiet(page);
}

const SCENARIOS = { lifecycle, pages, search, jobs };

const name = process.argv[2];
if (!SCENARIOS[name]) {
  console.error(`usage: node console.mjs ${Object.keys(SCENARIOS).join("|")}`);
  process.exit(2);
}
const browser = await chromium.launch({
  executablePath: CHROMIUM,
  // Root (a container, CI) cannot use Chromium's sandbox.
  args: process.getuid && process.getuid() === 0 ? ["--no-sandbox"] : [],
});
try {
  await SCENARIOS[name](browser);
  console.log(`scenario ${name}: passed`);
} catch (e) {
  console.error(`scenario ${name}: FAILED\n${e.stack || e}`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
