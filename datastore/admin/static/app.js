// The data browser (GET /__admin): plain ES modules on top of the browser SDK, no build step.
// It calls the public API with the credential it holds and nothing else, so it shows exactly
// what that credential may see and do.
import { Datastore, DatastoreError } from "/__sdk/datastore.js";
import { documentView, newDocumentView } from "./form.js";
import { keyValueView, queuesView, topicView } from "./ops.js";

export const CONFIG = JSON.parse(document.getElementById("admin-config").textContent);
const STORE = "datastore-admin-identities";
const CURRENT = "datastore-admin-current";
const ANONYMOUS = { label: "anonymous", kind: "anonymous", value: "" };

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

function savedIdentities() {
  try {
    const list = JSON.parse(sessionStorage.getItem(STORE) || "[]");
    return Array.isArray(list) ? list.filter((i) => i && i.label && i.kind) : [];
  } catch {
    return [];
  }
}

function identities() {
  return [ANONYMOUS, ...savedIdentities()];
}

export function currentIdentity() {
  const label = sessionStorage.getItem(CURRENT);
  return identities().find((i) => i.label === label) || ANONYMOUS;
}

function decodeJwt(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(part + "=".repeat((4 - (part.length % 4)) % 4)));
  } catch {
    return null;
  }
}

function defaultLabel(kind, value) {
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

function switchTo(label) {
  sessionStorage.setItem(CURRENT, label);
  clients.clear();
  renderIdentityBar();
  announce(`Now signed in as ${label}`);
  refreshCounts();
  route();
}

function renderIdentityBar() {
  const bar = document.getElementById("identity-bar");
  const current = currentIdentity();
  const kinds = [
    ["jwt", "JWT (bearer token)"],
    ["apikey", "API key"],
    ...(CONFIG.dev ? [["claims", "Claims signed by /__jwt (--dev)"]] : []),
  ];
  const error = h("p", { id: "signin-error", className: "error", role: "alert", hidden: true });
  const form = h(
    "form",
    { id: "signin", hidden: true, onsubmit: (event) => signIn(event, error) },
    h("label", { for: "signin-kind" }, "Credential"),
    h("select", { id: "signin-kind" }, kinds.map(([v, t]) => h("option", { value: v }, t))),
    h("label", { for: "signin-value" }, "Value"),
    h("textarea", {
      id: "signin-value",
      placeholder: CONFIG.dev ? '{"sub": "ann"}  or a token, or an API key' : "a token or an API key",
    }),
    h("label", { for: "signin-label" }, "Name (optional)"),
    h("input", { id: "signin-label", type: "text" }),
    h("button", { type: "submit", className: "primary" }, "Sign in"),
    error,
  );
  fill(bar, 
    h("span", { className: "who" }, "Signed in as: ", h("strong", { id: "current-identity" }, current.label)),
    h("span", { id: "identity-switch", role: "group", "aria-label": "Switch identity" },
      identities().map((identity) =>
        h("button", {
          type: "button",
          className: "identity",
          "data-label": identity.label,
          "aria-pressed": identity.label === current.label ? "true" : "false",
          onclick: () => switchTo(identity.label),
        }, identity.label),
      ),
    ),
    h("button", {
      type: "button",
      id: "signin-toggle",
      "aria-expanded": "false",
      "aria-controls": "signin",
      onclick: (event) => {
        form.hidden = !form.hidden;
        event.currentTarget.setAttribute("aria-expanded", String(!form.hidden));
        if (!form.hidden) document.getElementById("signin-value").focus();
      },
    }, "Sign in…"),
    current.kind !== "anonymous"
      ? h("button", { type: "button", id: "forget", onclick: () => forget(current.label) }, `Forget ${current.label}`)
      : null,
    form,
  );
}

async function signIn(event, error) {
  event.preventDefault();
  const kind = document.getElementById("signin-kind").value;
  const value = document.getElementById("signin-value").value.trim();
  error.hidden = true;
  try {
    if (!value) throw new Error("Enter a credential.");
    if (kind === "claims") {
      const claims = JSON.parse(value);
      if (!claims || typeof claims !== "object" || Array.isArray(claims)) {
        throw new Error("The claims must be a JSON object.");
      }
    }
    if (kind === "jwt" && !decodeJwt(value)) throw new Error("That is not a JWT.");
    const label = document.getElementById("signin-label").value.trim() || defaultLabel(kind, value);
    const list = savedIdentities().filter((i) => i.label !== label);
    list.push({ label, kind, value });
    sessionStorage.setItem(STORE, JSON.stringify(list));
    switchTo(label);
  } catch (problem) {
    error.textContent = problem instanceof SyntaxError ? "The claims are not valid JSON." : problem.message;
    error.hidden = false;
  }
}

function forget(label) {
  sessionStorage.setItem(STORE, JSON.stringify(savedIdentities().filter((i) => i.label !== label)));
  switchTo(ANONYMOUS.label);
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

function collectionsOf(space) {
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

// -- the tree ---------------------------------------------------------------------------------

function renderTree() {
  const tree = document.getElementById("tree");
  const blocks = spaces.map((space) => {
    const roots = space.collections.filter((c) => !c.nested);
    const children = (parent) =>
      space.collections.filter(
        (c) => c.nested && c.segments.length === parent.segments.length + 2 &&
          parent.segments.every((s, i) => s === c.segments[i]),
      );
    const item = (collection) => {
      const nested = children(collection);
      return h(
        "li",
        {},
        collection.nested
          ? h("span", { className: "nested", title: "open a document to list these" }, `${collection.name} (per ${collection.segments[collection.segments.length - 3]} document)`)
          : h("a", { href: `#/${space.name}/c${collection.template}`, "data-collection": `${space.name}:${collection.template}` },
              collection.name, h("span", { className: "count", "aria-label": "documents" }, "…")),
        nested.length ? h("ul", {}, nested.map(item)) : null,
      );
    };
    const heading = h("h2", { id: `space-${space.name}` }, spaces.length > 1 ? `${space.title} (${space.name})` : space.title);
    const dynamic = space.dynamic
      ? h("li", {}, h("form", {
          onsubmit: (event) => {
            event.preventDefault();
            const name = event.target.querySelector("input").value.trim().replace(/^\/+/, "");
            if (name) location.hash = `#/${space.name}/c/${encodeURIComponent(name)}`;
          },
        },
        h("label", { for: `dynamic-${space.name}` }, "Open collection "),
        h("input", { id: `dynamic-${space.name}`, type: "text", size: 10 }),
        h("button", { type: "submit" }, "Open")))
      : null;
    const paths = space.openapi.paths || {};
    const ops = [
      paths["/keyv"]?.get ? h("li", {}, h("a", { href: `#/${space.name}/kv`, "data-view": `${space.name}:kv` }, "Key-value")) : null,
      paths["/queue"]?.get ? h("li", {}, h("a", { href: `#/${space.name}/queues`, "data-view": `${space.name}:queues` }, "Queues")) : null,
    ];
    return [heading, h("ul", { "aria-labelledby": `space-${space.name}` }, roots.map(item), dynamic, ops)];
  });
  fill(tree, ...blocks.flat());
}

async function refreshCounts() {
  const links = [...document.querySelectorAll("#tree a[data-collection]")];
  await Promise.all(
    links.map(async (link) => {
      const [name, template] = link.dataset.collection.split(/:(.*)/s);
      const badge = link.querySelector(".count");
      try {
        const space = spaceNamed(name);
        // _count where the blueprint declares it; else the listing's own count hint
        const answer = space.openapi.paths[`${template}/_count`]?.get
          ? await send(space, "GET", `${template}/_count`)
          : await send(space, "GET", template, { params: { h: '{"$onlycount": true}' } });
        const count = Array.isArray(answer.body) ? answer.body[0]?.count : answer.body?.count;
        badge.textContent = String(count ?? "?");
        badge.title = `${count} documents ${currentIdentity().label} may read`;
      } catch (error) {
        badge.textContent = error instanceof DatastoreError ? String(error.status) : "!";
        badge.title = error.message;
      }
    }),
  );
}

// -- the table of one collection --------------------------------------------------------------

let stopLive = () => {};

function cell(value) {
  if (value === undefined) return "";
  if (value === null) return "null";
  return typeof value === "object" ? JSON.stringify(value) : String(value);
}

export function problemList(error) {
  const params = (error && error.invalidParams) || [];
  return h("div", { className: "error", role: "alert" },
    h("strong", {}, error.status ? `${error.status} ${error.title || ""}` : "Error"),
    error.detail ? ` ${error.detail}` : "",
    params.length ? h("ul", {}, params.map((p) => h("li", {}, h("code", {}, p.name), `: ${p.reason}`))) : null,
  );
}

const LINEAGE = new Set(["document.$extendsAll", "document.$extendedBy", "document.$extendedByAll"]);

function columnsOf(collection, rows) {
  const entries = Object.entries(collection.properties).filter(([, schema]) => !LINEAGE.has(schema["x-datastore-source"]));
  const rank = ([, schema]) => {
    const source = schema["x-datastore-source"];
    return source === "document.$id" ? 0 : !source || source === "document.$extends" ? 1 : 2;
  };
  const names = entries.sort((a, b) => rank(a) - rank(b)).map(([name]) => name);
  if (!names.length) for (const row of rows) for (const key of Object.keys(row)) if (!names.includes(key)) names.push(key);
  return names.slice(0, 12);
}

function idOf(collection, row) {
  const idName = Object.entries(collection.properties).find(([, s]) => s["x-datastore-source"] === "document.$id");
  return row[idName ? idName[0] : "_id"] ?? row.id ?? row._id;
}

function tableView(space, path) {
  const collection = collectionAt(space, path);
  const main = document.getElementById("main");
  if (!collection) {
    fill(main, h("h1", {}, "Not found"), h("p", {}, `No collection at ${path}.`));
    return;
  }
  const state = { kind: "filters", text: "", sort: null, size: 10, link: null, rows: [], links: {} };
  const filterInput = h("input", { id: "filter", type: "search", "aria-describedby": "filter-error filter-help", placeholder: "document.cost<10;document.category===music" });
  const kind = h("select", { id: "filter-kind", onchange: () => {
    state.kind = kind.value;
    filterInput.placeholder = kind.value === "q" ? '{"cost": {"$lt": 10}}' : "document.cost<10;document.category===music";
  } },
    h("option", { value: "filters" }, "Squiz filters"),
    h("option", { value: "q" }, "Codehooks q"),
  );
  const errorBox = h("div", { id: "filter-error" });
  const table = h("table", { id: "documents" });
  const pager = h("div", { className: "pager" });
  const live = h("span", { id: "live-status", className: "live" });
  const apply = (event) => {
    event.preventDefault();
    state.kind = kind.value;
    state.text = filterInput.value.trim();
    state.link = null;
    load();
    subscribe();
  };
  fill(main, 
    h("h1", {}, path, " ", live),
    h("form", { className: "toolbar", role: "search", onsubmit: apply },
      h("label", { for: "filter-kind" }, "Dialect"), kind,
      h("label", { for: "filter" }, "Filter"), filterInput,
      h("button", { type: "submit", id: "apply-filter" }, "Apply"),
      h("label", { for: "page-size" }, "Per page"),
      h("select", { id: "page-size", onchange: (e) => { state.size = Number(e.target.value); state.link = null; load(); } },
        [10, 25, 100].map((n) => h("option", { value: n }, n))),
      collection.can.post || collection.can.put ? h("a", { href: `#/${space.name}/new${path}`, id: "new-document" }, "New document") : null,
    ),
    h("p", { id: "filter-help", className: "visually-hidden" }, "Squiz filters like document.cost<10, or a Codehooks q object"),
    errorBox, h("div", { className: "table-scroll" }, table), pager,
  );

  async function load(flashId) {
    const params = { "page[size]": state.size, "page[v]": 2 };
    if (state.text) params[state.kind] = state.text;
    if (state.sort) params.sort = `${state.sort.dir > 0 ? "+" : "-"}document.${state.sort.field}`;
    try {
      const answer = state.link
        ? await send(space, "GET", state.link, { absolute: true })
        : await send(space, "GET", path, { params });
      const page = answer.body;
      state.rows = Array.isArray(page) ? page : page.data;
      state.links = Array.isArray(page) ? {} : page.links || {};
      fill(errorBox, );
      filterInput.removeAttribute("aria-invalid");
      render(flashId);
    } catch (error) {
      if (!(error instanceof DatastoreError)) throw error;
      fill(errorBox, problemList(error));
      filterInput.setAttribute("aria-invalid", "true");
      state.rows = [];
      state.links = {};
      render();
    }
  }

  function render(flashId) {
    const columns = columnsOf(collection, state.rows);
    const header = h("tr", {}, columns.map((name) => {
      const sorted = state.sort && state.sort.field === name;
      return h("th", { scope: "col", "aria-sort": sorted ? (state.sort.dir > 0 ? "ascending" : "descending") : "none" },
        h("button", { type: "button", "data-sort": name, onclick: () => {
          state.sort = { field: name, dir: sorted && state.sort.dir > 0 ? -1 : 1 };
          state.link = null;
          load();
        } }, name, sorted ? (state.sort.dir > 0 ? " ▲" : " ▼") : ""));
    }));
    const rows = state.rows.map((row) => {
      const id = idOf(collection, row);
      return h("tr", { "data-id": id, className: id !== undefined && String(id) === flashId ? "flash" : null },
        columns.map((name, index) =>
          h("td", {}, index === 0 && id !== undefined
            ? h("a", { href: `#/${space.name}/d${path}/${encodeURIComponent(id)}` }, cell(row[name]) || String(id))
            : cell(row[name]))),
      );
    });
    fill(table, 
      h("caption", { className: "visually-hidden" }, `Documents of ${path}`),
      h("thead", {}, header),
      h("tbody", {}, rows.length ? rows : h("tr", {}, h("td", { colspan: Math.max(columns.length, 1) }, "No documents."))),
    );
    fill(pager, 
      h("button", { type: "button", id: "prev-page", disabled: !state.links.prev, onclick: () => { state.link = state.links.prev; load(); } }, "Previous page"),
      h("button", { type: "button", id: "next-page", disabled: !state.links.next, onclick: () => { state.link = state.links.next; load(); } }, "Next page"),
      h("span", { id: "row-count" }, `${state.rows.length} shown`),
    );
  }

  function subscribe() {
    stopLive();
    stopLive = () => {};
    if (!collection.can.changes) {
      live.textContent = "";
      return;
    }
    const options = {
      onError: (error) => (live.textContent = `live updates stopped: ${error.message}`),
    };
    if (state.text && state.kind === "filters") options.filters = state.text;
    if (state.text && state.kind === "q") {
      try {
        options.q = JSON.parse(state.text);
      } catch {
        return;
      }
    }
    live.textContent = "● live";
    const sdkCollection = client(space).collection(path);
    stopLive = sdkCollection.subscribe((change) => {
      const id = change.data && (idOf(collection, change.data) ?? change.data.id);
      announce(`${change.event}: ${id}`);
      live.textContent = `● live — last change: ${change.event} ${id ?? ""}`;
      load(id === undefined ? undefined : String(id));
    }, options);
  }

  load();
  subscribe();
}

// -- routing ----------------------------------------------------------------------------------

let navigation = 0;

/** A token of the current view: a view that awaited something draws only if it is still
 * current (``stale(token)`` is false), so a slow answer never replaces a newer view. */
export function viewToken() {
  return navigation;
}

export function stale(token) {
  return token !== navigation;
}

export function route() {
  navigation += 1;
  stopLive();
  stopLive = () => {};
  const hash = decodeURIComponent(location.hash.replace(/^#/, ""));
  const match = hash.match(/^\/([^/]+)\/(c|d|new|kv|queues)(\/.*)?$/);
  for (const link of document.querySelectorAll("#tree a[aria-current]")) link.removeAttribute("aria-current");
  if (!match || !spaceNamed(match[1])) {
    const main = document.getElementById("main");
    fill(main, 
      h("h1", {}, "Data browser"),
      h("p", {}, "Pick a collection on the left. Every request is made with the identity shown at the top, through the public API."),
    );
    return;
  }
  const [, name, view, path] = match;
  const space = spaceNamed(name);
  const current = path ? document.querySelector(`#tree a[href="#/${CSS.escape(name)}/c${CSS.escape(path)}"]`) : null;
  if (current) current.setAttribute("aria-current", "page");
  const here = document.querySelector(`#tree a[href="#/${CSS.escape(name)}/${view}"]`);
  if (here && (view === "kv" || view === "queues")) here.setAttribute("aria-current", "page");
  if (view === "kv") keyValueView(space);
  else if (view === "queues" && path && path.length > 1) topicView(space, path.slice(1));
  else if (view === "queues") queuesView(space);
  else if (!path) location.hash = `#/${name}/c/`;
  else if (view === "c") tableView(space, path);
  else if (view === "new") newDocumentView(space, path);
  else documentView(space, path);
}

async function main() {
  renderIdentityBar();
  await Promise.all(
    CONFIG.spaces.map(async (space) => {
      const response = await fetch(`${space.base}/openapi.json`);
      const openapi = await response.json();
      const loaded = { ...space, openapi, dynamic: null };
      loaded.collections = collectionsOf(loaded);
      spaces.push(loaded);
    }),
  );
  spaces.sort((a, b) => a.base.localeCompare(b.base));
  renderTree();
  window.addEventListener("hashchange", route);
  route();
  await refreshCounts();
  document.body.dataset.ready = String(Math.round(performance.now()));
}

main().catch((error) => {
  fill(document.getElementById("main"), h("p", { className: "error", role: "alert" }, `The page could not start: ${error.message}`));
});
