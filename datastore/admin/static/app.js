// The data browser (GET /__admin): plain ES modules on top of the browser SDK, no build step.
// It calls the public API with the credential it holds and nothing else, so it shows exactly
// what that credential may see and do.
import { DatastoreError } from "/__sdk/datastore.js";
import {
  ANONYMOUS, CONFIG, CURRENT, STORE, announce, client, collectionAt, collectionsOf, currentIdentity,
  decodeJwt, defaultLabel, fill, forgetClients, h, identities, nextView, problemList,
  savedIdentities, send, spaceNamed, spaces,
} from "./shared.js";
import { documentView, newDocumentView } from "./form.js";
import { keyValueView, queuesView, topicView } from "./ops.js";


function switchTo(label) {
  sessionStorage.setItem(CURRENT, label);
  forgetClients();
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
        h("button", { type: "submit" }, "Open")),
        h("ul", { id: `stored-${space.name}`, className: "stored", "aria-label": "Collections in the database" }))
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

/** The dynamic collections the database holds, listed under their space for an API key (the
 * listing is for operators; a token is answered 403 and sees the name box alone). */
async function listStored(space) {
  const list = document.getElementById(`stored-${space.name}`);
  if (!list) return;
  if (currentIdentity().kind !== "apikey") {
    fill(list);
    return;
  }
  try {
    const answer = await send(space, "GET", "/__admin/collections");
    const declared = new Set(space.collections.map((c) => c.template));
    const names = answer.body.collections.filter((name) => !declared.has(`/${name}`));
    fill(list, names.map((name) => h("li", {}, h("a", {
      href: `#/${space.name}/c/${encodeURIComponent(name)}`, "data-stored": `${space.name}:${name}`,
    }, name))), answer.body.more ? h("li", {}, "… and more (open one by name)") : null);
  } catch (error) {
    fill(list, h("li", { className: "error" }, error.message));
  }
}

async function refreshCounts() {
  const links = [...document.querySelectorAll("#tree a[data-collection]")];
  await Promise.all([
    ...spaces.filter((space) => space.dynamic).map(listStored),
    ...links.map(async (link) => {
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
  ]);
}

// -- the table of one collection --------------------------------------------------------------

let stopLive = () => {};

function cell(value) {
  if (value === undefined) return "";
  if (value === null) return "null";
  return typeof value === "object" ? JSON.stringify(value) : String(value);
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


export function route() {
  nextView();
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
