// Run in the data browser's page by tests/test_admin_browser.py: every control has a label,
// every button and link a name, ids are unique, the page has a language and landmarks.
const problems = [];
const name = (node) => (node.getAttribute("aria-label") || "").trim()
  || (node.getAttribute("aria-labelledby") || "").split(" ").map((id) => document.getElementById(id)?.textContent || "").join("").trim()
  || [...(node.labels || [])].map((l) => l.textContent).join("").trim();
for (const node of document.querySelectorAll("input, select, textarea")) {
  if (node.type === "hidden" || node.closest("[hidden]")) continue;
  if (!name(node)) problems.push(`no label: ${node.outerHTML.slice(0, 80)}`);
}
for (const node of document.querySelectorAll("button, a[href]")) {
  if (node.closest("[hidden]")) continue;
  if (!(node.textContent.trim() || name(node))) problems.push(`no name: ${node.outerHTML.slice(0, 80)}`);
}
for (const node of document.querySelectorAll("[id]")) {
  if (document.querySelectorAll(`#${CSS.escape(node.id)}`).length > 1) problems.push(`duplicate id ${node.id}`);
}
if (!document.documentElement.lang) problems.push("no lang");
if (!document.querySelector("main") || !document.querySelector("nav")) problems.push("no landmarks");
return [...new Set(problems)];
