// Helpers the data browser's views share: the DOM helper, identities and the SDK client of
// each, requests with the current identity, the spaces' collections from /openapi.json, the
// error list, and the token of the current view. The views (app.js, form.js, ops.js, why.js)
// import from here, and app.js imports the views: no module imports one that imports it.
import { Datastore, DatastoreError } from "/__sdk/datastore.js";

export const CONFIG = JSON.parse(document.getElementById("admin-config").textContent);
export const STORE = "datastore-admin-identities";
export const CURRENT = "datastore-admin-current";
export const ANONYMOUS = { label: "anonymous", kind: "anonymous", value: "" };

// -- small DOM helper -----------------------------------------------------------------------

export function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "text") node.textContent = value;
    else if (key === "className") node.className = value;
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** Replace a node's children (nested arrays flattened, null / false left out). */
export function fill(node, ...children) {
  node.replaceChildren(...h("div", {}, ...children).childNodes);
  return node;
}

export function announce(text) {
  const region = document.getElementById("live-region");
  region.textContent = "";
  setTimeout(() => (region.textContent = text), 20);
}

// -- identities -------------------------------------------------------------------------------

export function savedIdentities() {
  try {
    const list = JSON.parse(sessionStorage.getItem(STORE) || "[]");
    return Array.isArray(list) ? list.filter((i) => i && i.label && i.kind) : [];
  } catch {
    return [];
  }
}

export function identities() {
  return [ANONYMOUS, ...savedIdentities()];
}

export function currentIdentity() {
  const label = sessionStorage.getItem(CURRENT);
  return identities().find((i) => i.label === label) || ANONYMOUS;
}

export function decodeJwt(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(part + "=".repeat((4 - (part.length % 4)) % 4)));
  } catch {
    return null;
  }
}

export function defaultLabel(kind, value) {
  if (kind === "apikey") return `API key …${value.slice(-4)}`;
  const claims = kind === "jwt" ? decodeJwt(value) : JSON.parse(value);
  const who = claims && (claims.sub ?? claims.email ?? claims.name);
  return who !== undefined && who !== null ? `${kind === "jwt" ? "JWT" : "claims"}: ${who}` : kind;
}

const clients = new Map();

/** The SDK client of a space for the current identity. */
export function client(space) {
  const identity = currentIdentity();
  const key = `${space.base}\u0000${identity.label}`;
  if (!clients.has(key)) {
    const settings = { serviceURL: location.origin + space.base };
    if (identity.kind === "jwt") settings.jwtCallback = async () => identity.value;
    if (identity.kind === "claims") {
      settings.jwtURL = CONFIG.jwtURL;
      settings.jwtPayload = JSON.parse(identity.value);
    }
    if (identity.kind === "apikey") settings.apiKey = identity.value;
    clients.set(key, new Datastore(settings));
  }
  return clients.get(key);
}

/** A request with the current identity that answers status, headers and body (the SDK's
 * request answers the body only; the document view needs the ETag). */
export async function send(space, method, path, { body, params, headers, absolute } = {}) {
  const ds = client(space);
  if (ds.usesTokens && !ds.token) await ds.fetchToken();
  const url = new URL(absolute ? location.origin + path : location.origin + space.base + path);
  for (const [key, value] of Object.entries(params || {})) {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(key, value);
  }
  const sent = { ...(headers || {}) };
  if (ds.token) sent.Authorization = `Bearer ${ds.token}`;
  if (ds.settings.apiKey) sent["x-apikey"] = ds.settings.apiKey;
  if (body !== undefined) sent["Content-Type"] = "application/json";
  const response = await fetch(url, {
    method,
    headers: sent,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  let parsed = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = { title: text };
  }
  if (!response.ok) throw new DatastoreError(response.status, parsed || {});
  return { status: response.status, etag: response.headers.get("ETag"), body: parsed };
}

// -- the blueprints: collections from each space's /openapi.json ------------------------------

export const spaces = [];

function resolve(document, schema, depth = 0) {
  if (!schema || depth > 20) return schema || {};
  if (schema.$ref && schema.$ref.startsWith("#/")) {
    let target = document;
    for (const part of schema.$ref.slice(2).split("/")) target = target?.[part.replace(/~1/g, "/").replace(/~0/g, "~")];
    return resolve(document, target, depth + 1);
  }
  return schema;
}

function jsonSchemaOf(document, operation, status) {
  const content = operation?.responses?.[status]?.content?.["application/json"]
    ?? operation?.requestBody?.content?.["application/json"];
  return content ? resolve(document, content.schema) : null;
}

/** Properties of an object schema (allOf merged, $refs resolved). */
export function propertiesOf(document, schema) {
  schema = resolve(document, schema);
  const properties = {};
  for (const part of schema.allOf || []) Object.assign(properties, propertiesOf(document, part));
  for (const [name, value] of Object.entries(schema.properties || {})) {
    properties[name] = resolve(document, value);
  }
  return properties;
}

export function collectionsOf(space) {
  const paths = space.openapi.paths || {};
  const found = [];
  for (const [template, item] of Object.entries(paths)) {
    const segments = template.split("/").filter(Boolean);
    const last = segments[segments.length - 1] || "";
    if (!item.get || segments[0] === "keyv" || segments[0] === "queue") continue; // their own views
    if (last.startsWith("{")) {
      if (segments.length === 1) space.dynamic = template;
      continue;
    }
    if (last.startsWith("_")) continue;
    const docTemplate = Object.keys(paths).find(
      (p) => p.startsWith(template + "/{") && p.split("/").length === template.split("/").length + 1,
    );
    if (!docTemplate) continue;
    const docItem = paths[docTemplate];
    const schema = jsonSchemaOf(space.openapi, docItem.get, "200") || jsonSchemaOf(space.openapi, docItem.put);
    found.push({
      space,
      template,
      docTemplate,
      segments,
      name: last,
      nested: segments.some((s) => s.startsWith("{")),
      properties: schema ? propertiesOf(space.openapi, schema) : {},
      required: (schema && schema.required) || [],
      can: {
        post: Boolean(item.post),
        put: Boolean(docItem.put),
        patch: Boolean(docItem.patch),
        delete: Boolean(docItem.delete),
        changes: Boolean(paths[template + "/_changes"]),
      },
    });
  }
  return found;
}

/** The collection template serving the concrete collection path ``/events/e1/comments``. */
export function collectionAt(space, path) {
  const segments = path.split("/").filter(Boolean);
  const found = space.collections.find(
    (c) => c.segments.length === segments.length && c.segments.every((s, i) => s.startsWith("{") || s === segments[i]),
  );
  if (found) return found;
  if (space.dynamic && segments.length === 1) {
    return { space, template: "/" + segments[0], segments, name: segments[0], dynamic: true, properties: {}, required: [], can: { post: true, put: true, patch: true, delete: true, changes: Boolean(space.openapi.paths[space.dynamic + "/_changes"]) } };
  }
  return null;
}

export function spaceNamed(name) {
  return spaces.find((s) => s.name === name);
}

export function problemList(error) {
  const params = (error && error.invalidParams) || [];
  return h("div", { className: "error", role: "alert" },
    h("strong", {}, error.status ? `${error.status} ${error.title || ""}` : "Error"),
    error.detail ? ` ${error.detail}` : "",
    params.length ? h("ul", {}, params.map((p) => h("li", {}, h("code", {}, p.name), `: ${p.reason}`))) : null,
  );
}

// -- the current view ---------------------------------------------------------------------

let navigation = 0;

/** A token of the current view: a view that awaited something draws only if it is still
 * current (``stale(token)`` is false), so a slow answer never replaces a newer view. */
export function viewToken() {
  return navigation;
}

export function stale(token) {
  return token !== navigation;
}

/** A new view begins: views that awaited something for the old one are now stale. */
export function nextView() {
  navigation += 1;
}

/** Forget the SDK clients (the identity changed). */
export function forgetClients() {
  clients.clear();
}
