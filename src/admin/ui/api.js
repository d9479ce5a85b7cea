// The console's plumbing: calls to the admin API (bearer token from
// sessionStorage, JSON bodies, JSON errors) and small DOM helpers. Every
// value from the API reaches the page through text nodes, never as HTML.

export const TOKEN_KEY = "tenant-gateway.token";

export const $ = (id) => document.getElementById(id);

export class ApiError extends Error {
  constructor(status, body) {
    const error = (body && body.error) || {};
    super(error.message || `HTTP ${status}`);
    this.status = status;
    this.code = error.code;
  }
}

export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

/** Told when the kept token is refused (401): the console signs out. */
let onRefused = () => {};
export function whenRefused(handler) {
  onRefused = handler;
}

/** One admin call; bodies go as JSON (the admin API takes no other type). `signal` aborts it. */
export async function api(method, path, body, bearer = token(), signal = undefined) {
  const headers = { Accept: "application/json" };
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  const init = { method, headers, cache: "no-store", credentials: "omit", signal };
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
    if (response.status === 401 && bearer === token()) onRefused();
    throw error;
  }
  return json;
}

export const enc = encodeURIComponent;

/** An element with text or children, e.g. el("td", {}, "x"). */
export function el(tag, attrs = {}, ...children) {
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

export function badge(text, kind) {
  return el("span", { class: `badge ${kind}` }, text);
}

export function fill(tbody, rows) {
  tbody.replaceChildren(...rows);
}

let noticeTimer = null;
export function notice(message, isError = false) {
  const box = $("notice");
  box.textContent = message;
  box.className = isError ? "error" : "";
  box.hidden = false;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => (box.hidden = true), isError ? 10000 : 4000);
}

/** Runs an action, showing its error (if any) in the notice line; an aborted call is no error. */
export async function attempt(action) {
  try {
    return await action();
  } catch (e) {
    if (e.name === "AbortError") return undefined;
    if (!(e instanceof ApiError && e.status === 401)) notice(e.message, true);
    return undefined;
  }
}
