// The document view: a form generated from the collection's JSON Schema, a raw JSON tab,
// inherited values marked with their $extends chain, saves with If-Match, deletes with the
// 409 / detach choice, and (under --dev) "Why can't I?".
import { DatastoreError } from "/__sdk/datastore.js";
import { announce, collectionAt, CONFIG, fill, h, problemList, send, stale, viewToken } from "./shared.js";
import { whyPanel } from "./why.js";

const SOURCE = "x-datastore-source";
const EXTENDS = "document.$extends";

function kindOf(schema) {
  let type = schema.type;
  if (Array.isArray(type)) type = type.find((t) => t !== "null");
  if (!type && schema.anyOf) type = schema.anyOf.map((s) => s.type).find((t) => t && t !== "null");
  return type || "any";
}

function nullable(schema) {
  return Boolean(schema.nullable) || (Array.isArray(schema.type) && schema.type.includes("null"));
}

function editable(schema) {
  const source = schema[SOURCE];
  return source ? source === EXTENDS : !schema.readOnly;
}

function same(a, b) {
  return JSON.stringify(a) === JSON.stringify(b);
}

function splitPath(path) {
  const parts = path.split("/").filter(Boolean);
  return { collectionPath: "/" + parts.slice(0, -1).join("/"), id: parts[parts.length - 1] };
}

function control(name, schema, value, readonly) {
  const attrs = { id: `field-${name}`, name, "aria-describedby": `error-${name}` };
  const kind = kindOf(schema);
  if (schema.enum) {
    return h("select", { ...attrs, disabled: readonly },
      h("option", { value: "" }, "—"),
      schema.enum.map((option) => h("option", { value: JSON.stringify(option), selected: same(option, value) }, String(option))));
  }
  if (kind === "boolean") {
    return h("input", { ...attrs, type: "checkbox", checked: value === true, disabled: readonly });
  }
  if (kind === "integer" || kind === "number") {
    return h("input", { ...attrs, type: "number", step: kind === "integer" ? "1" : "any", value: value ?? "", readonly });
  }
  if (kind === "object" || kind === "array" || kind === "any") {
    return h("textarea", { ...attrs, rows: 3, readonly }, value === undefined ? "" : JSON.stringify(value, null, 1));
  }
  return h("input", { ...attrs, type: "text", value: value ?? "", readonly });
}

/** The value a control holds: {present, value}. */
function readControl(node, schema) {
  const kind = kindOf(schema);
  if (schema.enum) return node.value === "" ? { present: false } : { present: true, value: JSON.parse(node.value) };
  if (kind === "boolean") return { present: true, value: node.checked };
  const raw = node.value;
  if (raw === "") return { present: false };
  if (kind === "integer" || kind === "number") {
    const number = Number(raw);
    return { present: true, value: Number.isNaN(number) ? raw : number };
  }
  if (kind === "object" || kind === "array" || kind === "any") {
    try {
      return { present: true, value: JSON.parse(raw) };
    } catch {
      return { present: true, value: raw };
    }
  }
  return { present: true, value: raw };
}

function showProblems(form, error, general) {
  for (const span of form.querySelectorAll(".field-error")) span.textContent = "";
  for (const node of form.querySelectorAll("[aria-invalid]")) node.removeAttribute("aria-invalid");
  const unplaced = [];
  let first = null;
  for (const problem of error.invalidParams || []) {
    const name = String(problem.name).split(/[./[]/)[0];
    const span = form.querySelector(`#error-${CSS.escape(name)}`);
    if (!span) {
      unplaced.push(problem);
      continue;
    }
    span.textContent = `${problem.name}: ${problem.reason}`;
    const node = form.querySelector(`#field-${CSS.escape(name)}`);
    if (node) {
      node.setAttribute("aria-invalid", "true");
      first = first || node;
    }
  }
  const placed = (error.invalidParams || []).length - unplaced.length;
  fill(general, problemList({ ...error, invalidParams: unplaced }),
    placed ? h("p", {}, `${placed} problem(s) shown next to their fields.`) : null);
  (first || general).focus?.();
  announce(`Not saved: ${error.title || error.status}`);
}

function fieldRows(collection, doc, inherited, parentPath, spaceName, creating) {
  return Object.entries(collection.properties).map(([name, schema]) => {
    const source = schema[SOURCE];
    const lineage = source && source !== EXTENDS && source.startsWith("document.$extend");
    if (creating && (source && source !== EXTENDS)) return null;
    if (lineage) return null;
    const readonly = !editable(schema);
    const isInherited = inherited.has(name);
    const badges = [
      source ? h("span", { className: "badge" }, source === EXTENDS ? "$extends" : "source") : null,
      readonly ? h("span", { className: "badge" }, "read-only") : null,
      collection.required.includes(name) ? h("span", { className: "badge" }, "required") : null,
      isInherited
        ? h("span", { className: "badge inherited", "data-inherited": name }, "inherited from ",
            h("a", { href: `#/${spaceName}/d${parentPath}` }, parentPath))
        : null,
    ];
    return h("div", { className: `row${isInherited ? " inherited" : ""}` },
      h("div", {}, h("label", { for: `field-${name}` }, name), ...badges),
      h("div", {},
        control(name, schema, doc ? doc[name] : undefined, readonly),
        h("span", { className: "field-error", id: `error-${name}` }),
        schema.description ? h("small", {}, schema.description) : null),
    );
  });
}

function tabs(formPanel, rawPanel) {
  const select = (which) => {
    for (const [tab, panel] of [[formTab, formPanel], [rawTab, rawPanel]]) {
      tab.setAttribute("aria-selected", String(tab === which));
      tab.tabIndex = tab === which ? 0 : -1;
      panel.hidden = tab !== which;
    }
    which.focus();
  };
  const keys = (event) => {
    if (event.key === "ArrowRight" || event.key === "ArrowLeft") select(event.currentTarget === formTab ? rawTab : formTab);
  };
  const formTab = h("button", { type: "button", role: "tab", id: "tab-form", "aria-controls": "panel-form", "aria-selected": "true", onclick: () => select(formTab), onkeydown: keys }, "Form");
  const rawTab = h("button", { type: "button", role: "tab", id: "tab-raw", "aria-controls": "panel-raw", "aria-selected": "false", tabindex: -1, onclick: () => select(rawTab), onkeydown: keys }, "Raw JSON");
  formPanel.setAttribute("role", "tabpanel");
  formPanel.id = "panel-form";
  formPanel.setAttribute("aria-labelledby", "tab-form");
  rawPanel.setAttribute("role", "tabpanel");
  rawPanel.id = "panel-raw";
  rawPanel.setAttribute("aria-labelledby", "tab-raw");
  rawPanel.hidden = true;
  return h("div", { className: "tabs", role: "tablist", "aria-label": "Views of the document" }, formTab, rawTab);
}

function dialog(id, title, text, buttons) {
  const node = h("dialog", { id, "aria-labelledby": `${id}-title` },
    h("h2", { id: `${id}-title` }, title), h("p", {}, text),
    h("div", { className: "toolbar" }, buttons.map(([label, bid, action, cls]) =>
      h("button", { type: "button", id: bid, className: cls, onclick: () => { node.close(); node.remove(); action(); } }, label))));
  document.body.append(node);
  node.showModal();
  return node;
}

function nestedLinks(space, path) {
  const depth = path.split("/").filter(Boolean).length;
  const segments = path.split("/").filter(Boolean);
  const children = space.collections.filter(
    (c) => c.segments.length === depth + 1 && segments.every((s, i) => c.segments[i].startsWith("{") || c.segments[i] === s),
  );
  if (!children.length) return null;
  return h("p", {}, "Nested collections: ", children.map((c) =>
    h("a", { href: `#/${space.name}/c${path}/${c.name}`, className: "nested-link" }, c.name)));
}

export async function documentView(space, path) {
  const main = document.getElementById("main");
  const { collectionPath, id } = splitPath(path);
  const collection = collectionAt(space, collectionPath);
  if (!collection) {
    fill(main, h("h1", {}, "Not found"), h("p", {}, `No collection at ${collectionPath}.`));
    return;
  }
  const token = viewToken();
  let answer;
  try {
    answer = await send(space, "GET", path);
  } catch (error) {
    if (!(error instanceof DatastoreError)) throw error;
    if (stale(token)) return;
    fill(main, h("h1", {}, path), problemList(error),
      h("p", {}, h("a", { href: `#/${space.name}/c${collectionPath}` }, `Back to ${collectionPath}`)),
      CONFIG.dev ? whyPanel(space, path) : null);
    return;
  }
  const doc = answer.body;
  let etag = answer.etag;
  const extendsName = Object.entries(collection.properties).find(([, s]) => s[SOURCE] === EXTENDS)?.[0];
  const allName = Object.entries(collection.properties).find(([, s]) => s[SOURCE] === "document.$extendsAll")?.[0];
  const parentPath = extendsName && doc[extendsName] ? doc[extendsName] : null;
  const inherited = new Set();
  if (parentPath) {
    try {
      const parent = (await send(space, "GET", parentPath)).body;
      for (const [name, schema] of Object.entries(collection.properties)) {
        if (!schema[SOURCE] && name in parent && same(parent[name], doc[name])) inherited.add(name);
      }
    } catch {
      // the caller may not read the document it extends: nothing is marked
    }
  }
  if (stale(token)) return;
  const chain = allName && Array.isArray(doc[allName]) ? doc[allName] : parentPath ? [parentPath] : [];
  const general = h("div", { id: "form-errors", tabindex: -1 });
  const form = h("form", { className: "document", "aria-label": `Document ${path}`, onsubmit: (e) => { e.preventDefault(); save(); } },
    fieldRows(collection, doc, inherited, parentPath, space.name, false),
    h("div", { className: "toolbar" },
      collection.can.patch || collection.can.put ? h("button", { type: "submit", id: "save", className: "primary" }, "Save") : null,
      collection.can.delete ? h("button", { type: "button", id: "delete", className: "danger", onclick: () => remove(false) }, "Delete") : null,
      h("span", { id: "save-status", role: "status" }),
    ),
    general,
  );
  const editableOwn = Object.fromEntries(Object.entries(doc).filter(([name]) => {
    const schema = collection.properties[name];
    return schema ? editable(schema) && !inherited.has(name) : !name.startsWith("_");
  }));
  const rawErrors = h("div", { id: "raw-errors" });
  const raw = h("form", { onsubmit: (e) => { e.preventDefault(); saveRaw(); } },
    h("label", { for: "raw-json" }, "The document's own values (Replace sends them as a PUT)"),
    h("textarea", { id: "raw-json", className: "raw" }, JSON.stringify(editableOwn, null, 2)),
    h("div", { className: "toolbar" }, collection.can.put ? h("button", { type: "submit", id: "save-raw" }, "Replace") : null),
    rawErrors,
    h("h2", {}, "As GET shows it"), h("pre", { className: "raw" }, JSON.stringify(doc, null, 2)),
  );
  fill(main, 
    h("p", {}, h("a", { href: `#/${space.name}/c${collectionPath}` }, `← ${collectionPath}`)),
    h("h1", {}, path, h("span", { className: "badge", id: "version" }, `version ${etag ?? "?"}`)),
    chain.length
      ? h("nav", { className: "chain", "aria-label": "$extends chain" }, "Extends: ",
          chain.map((p, i) => [i ? " → " : "", h("a", { href: `#/${space.name}/d${p}`, className: "extends-link" }, p)]))
      : null,
    nestedLinks(space, path),
    tabs(form, raw), form, raw,
    CONFIG.dev ? whyPanel(space, path) : null,
  );

  async function save(overwrite = false) {
    const changes = {};
    for (const [name, schema] of Object.entries(collection.properties)) {
      const node = form.querySelector(`#field-${CSS.escape(name)}`);
      if (!node || !editable(schema)) continue;
      const read = readControl(node, schema);
      if (read.present && !same(read.value, doc[name])) changes[name] = read.value;
      if (!read.present && doc[name] !== undefined && doc[name] !== null && !inherited.has(name)) {
        changes[name] = nullable(schema) ? null : "";
      }
    }
    const status = form.querySelector("#save-status");
    if (!Object.keys(changes).length) {
      status.textContent = "Nothing changed.";
      return;
    }
    try {
      const headers = etag ? { "If-Match": etag } : {};
      const result = collection.can.patch
        ? await send(space, "PATCH", path, { body: changes, headers })
        : await send(space, "PUT", path, { body: { ...editableOwn, ...changes }, headers });
      etag = result.etag;
      announce("Saved");
      documentView(space, path).then(() => {
        const shown = document.getElementById("save-status");
        if (shown) shown.textContent = overwrite ? "Saved over the other change." : "Saved.";
      });
    } catch (error) {
      if (!(error instanceof DatastoreError)) throw error;
      if (error.status === 412) {
        dialog("conflict", "Changed by someone else",
          "This document changed since you opened it. Reload it (your edits are lost) or overwrite the other change with yours?",
          [["Reload", "conflict-reload", () => documentView(space, path)],
           ["Overwrite", "conflict-overwrite", async () => {
             const fresh = await send(space, "GET", path);
             etag = fresh.etag;
             save(true);
           }, "danger"]]);
        return;
      }
      showProblems(form, error, general);
    }
  }

  async function saveRaw() {
    let body;
    try {
      body = JSON.parse(raw.querySelector("#raw-json").value);
    } catch (problem) {
      fill(rawErrors, h("p", { className: "error", role: "alert" }, `Not JSON: ${problem.message}`));
      return;
    }
    try {
      await send(space, "PUT", path, { body, headers: etag ? { "If-Match": etag } : {} });
      announce("Replaced");
      documentView(space, path);
    } catch (error) {
      if (!(error instanceof DatastoreError)) throw error;
      fill(rawErrors, problemList(error));
    }
  }

  async function remove(detach) {
    try {
      await send(space, "DELETE", path, { params: detach ? { detach: "true" } : {} });
      announce(`Deleted ${path}`);
      location.hash = `#/${space.name}/c${collectionPath}`;
    } catch (error) {
      if (!(error instanceof DatastoreError)) throw error;
      if (error.status === 409) {
        const children = error.problem.extendedBy || [];
        dialog("extended", "Other documents extend this one",
          `${children.join(", ")} extend ${path}. Detach them (they keep the values they show now) and delete it?`,
          [["Detach and delete", "detach-delete", () => remove(true), "danger"], ["Cancel", "detach-cancel", () => {}]]);
        return;
      }
      fill(general, problemList(error));
    }
  }
}

export function newDocumentView(space, collectionPath) {
  const main = document.getElementById("main");
  const collection = collectionAt(space, collectionPath);
  if (!collection) {
    fill(main, h("h1", {}, "Not found"));
    return;
  }
  const general = h("div", { id: "form-errors", tabindex: -1 });
  const form = h("form", { className: "document", "aria-label": `New document in ${collectionPath}`, onsubmit: (e) => { e.preventDefault(); create(); } },
    h("div", { className: "row" },
      h("div", {}, h("label", { for: "new-id" }, "id"), h("span", { className: "badge" }, collection.can.post ? "optional" : "required")),
      h("div", {}, h("input", { id: "new-id", type: "text", "aria-describedby": "error-id" }), h("span", { className: "field-error", id: "error-id" }))),
    fieldRows(collection, null, new Set(), null, space.name, true),
    h("div", { className: "toolbar" }, h("button", { type: "submit", id: "create", className: "primary" }, "Create")),
    general,
  );
  fill(main, 
    h("p", {}, h("a", { href: `#/${space.name}/c${collectionPath}` }, `← ${collectionPath}`)),
    h("h1", {}, `New document in ${collectionPath}`), form);

  async function create() {
    const body = {};
    for (const [name, schema] of Object.entries(collection.properties)) {
      const node = form.querySelector(`#field-${CSS.escape(name)}`);
      if (!node || !editable(schema)) continue;
      const read = readControl(node, schema);
      if (read.present && !(kindOf(schema) === "boolean" && read.value === false && schema.default === undefined)) {
        body[name] = read.value;
      }
    }
    const id = form.querySelector("#new-id").value.trim();
    try {
      const answer = id || !collection.can.post
        ? await send(space, "PUT", `${collectionPath}/${encodeURIComponent(id)}`, { body })
        : await send(space, "POST", collectionPath, { body });
      const created = answer.body || {};
      const newId = id || created.id || created._id || created.$id;
      announce("Created");
      location.hash = `#/${space.name}/d${collectionPath}/${encodeURIComponent(newId)}`;
    } catch (error) {
      if (!(error instanceof DatastoreError)) throw error;
      showProblems(form, error, general);
    }
  }
}
