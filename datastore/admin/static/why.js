// "Why can't I?" (serve --dev only): each operation's rule on the open document for the current
// identity, with the values its operands took and the result, from GET <space>/__admin/why.
import { DatastoreError } from "/__sdk/datastore.js";
import { currentIdentity, fill, h, problemList, send } from "./shared.js";

function shown(operand) {
  return operand.missing ? "(missing)" : JSON.stringify(operand.value);
}

function node(tree) {
  const verdict = h("span", { className: `verdict ${tree.result}` }, String(tree.result));
  if (tree.kind === "compare") {
    return h("li", { className: "why-compare" },
      h("code", {}, tree.text), " → ",
      h("code", {}, `${shown(tree.left)} ${tree.op} ${shown(tree.right)}`), " → ", verdict);
  }
  const label = { and: "all of (&&)", or: "any of (||)", not: "not (!)" }[tree.kind];
  return h("li", {}, `${label} → `, verdict, h("ul", {}, tree.items.map(node)));
}

function operation(op) {
  return h("section", { className: "why-op", "data-method": op.method, "data-on": op.on },
    h("h3", {}, `${op.method} ${op.path} `,
      h("span", { className: `verdict ${op.result}` }, op.result ? "allowed" : "refused")),
    h("p", {}, op.rule === null ? "No rule. " : ["Rule: ", h("code", {}, op.rule), ". "], op.reason, "."),
    op.tree ? h("ul", {}, node(op.tree)) : null);
}

export function whyPanel(space, path) {
  const output = h("div", { id: "why-output", "aria-live": "polite" });
  const explain = async () => {
    fill(output, h("p", {}, "Evaluating…"));
    try {
      const answer = (await send(space, "GET", "/__admin/why", { params: { path } })).body;
      fill(output, 
        h("p", {}, `As ${currentIdentity().label}`, answer.found ? "" : " (the document does not exist: rules see no document)", ":"),
        answer.operations.map(operation),
      );
    } catch (error) {
      if (!(error instanceof DatastoreError)) throw error;
      fill(output, problemList(error));
    }
  };
  return h("section", { id: "why-panel", "aria-labelledby": "why-title" },
    h("h2", { id: "why-title" }, "Why can't I?"),
    h("p", {}, "Development mode only: each operation's access rule, evaluated on this document for the current identity."),
    h("button", { type: "button", id: "why", onclick: explain }, "Explain the rules"),
    output);
}
