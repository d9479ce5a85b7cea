// tenant-gateway console: a client of the admin API (/v1, /metrics) on the
// listener that serves it, with no framework and no build step. This module
// signs in and out, and shows one page at a time (#/tenants, #/pools,
// #/traffic, #/jobs), polling the live ones while they are shown.

import { $, api, TOKEN_KEY, token, whenRefused } from "./api.js";
import { loadJobs, loadPools, loadTraffic, resetTraffic, wireStatus } from "./status.js";
import { loadTenants, wireTenants } from "./tenants.js";

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
    resetTraffic();
    poll(loadTraffic, 2000);
  }
  if (page === "jobs") poll(loadJobs, 2000);
}

wireTenants();
wireStatus();
$("login-form").addEventListener("submit", signIn);
$("logout").addEventListener("click", () => signOut());
window.addEventListener("hashchange", route);
whenRefused(() => signOut("The gateway refused the token: sign in again."));
if (token() === null) signOut();
else showApp();
