// Key-value keys by prefix with their TTL, and queues: jobs by status, dead letters with their
// last error and a retry button. Both through the public API (GET /keyv, GET /queue,
// GET /queue/{topic}, POST /queue/{topic}/{id}/_retry) with the current identity.
import { DatastoreError } from "/__sdk/datastore.js";
import { announce, fill, h, problemList, send, stale, viewToken } from "./shared.js";

const STATUSES = ["queued", "running", "done", "dead"];

function ttl(expiresAt) {
  if (!expiresAt) return "none";
  const seconds = Math.round((Date.parse(expiresAt) - Date.now()) / 1000);
  if (seconds <= 0) return "expiring";
  if (seconds < 120) return `${seconds} s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)} min`;
  return `${Math.round(seconds / 3600)} h`;
}

export function keyValueView(space) {
  const main = document.getElementById("main");
  const output = h("div", { id: "kv-output" });
  const prefix = h("input", { id: "kv-prefix", type: "search" });
  const keyspace = h("input", { id: "kv-keyspace", type: "text", size: 10 });
  const load = async (event) => {
    event?.preventDefault();
    try {
      const answer = await send(space, "GET", "/keyv", { params: { prefix: prefix.value, keyspace: keyspace.value, limit: 100 } });
      const entries = answer.body || [];
      fill(output,
        h("table", { id: "keys" },
          h("caption", { className: "visually-hidden" }, "Keys"),
          h("thead", {}, h("tr", {}, ["key", "value", "TTL", "expires at"].map((n) => h("th", { scope: "col" }, n)))),
          h("tbody", {}, entries.length
            ? entries.map((e) => h("tr", { "data-key": e.key },
                h("td", {}, e.key), h("td", {}, JSON.stringify(e.value)),
                h("td", { className: "ttl" }, ttl(e.expiresAt)), h("td", {}, e.expiresAt || "")))
            : h("tr", {}, h("td", { colspan: 4 }, "No keys.")))),
        entries.length === 100 ? h("p", {}, "The first 100 keys; narrow the prefix.") : null);
    } catch (error) {
      if (!(error instanceof DatastoreError)) throw error;
      fill(output, problemList(error));
    }
  };
  fill(main,
    h("h1", {}, "Key-value"),
    h("form", { className: "toolbar", role: "search", onsubmit: load },
      h("label", { for: "kv-prefix" }, "Prefix"), prefix,
      h("label", { for: "kv-keyspace" }, "Keyspace"), keyspace,
      h("button", { type: "submit", id: "kv-search" }, "List keys")),
    output);
  load();
}

function countCells(counts) {
  return STATUSES.map((status) => h("td", { "data-status": status }, String(counts[status] ?? 0)));
}

export async function queuesView(space) {
  const main = document.getElementById("main");
  fill(main, h("h1", {}, "Queues"), h("p", {}, "Loading…"));
  const token = viewToken();
  try {
    const topics = (await send(space, "GET", "/queue")).body || [];
    if (stale(token)) return;
    fill(main,
      h("h1", {}, "Queues"),
      h("table", { id: "topics" },
        h("caption", { className: "visually-hidden" }, "Topics and their jobs by status"),
        h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "topic"), STATUSES.map((s) => h("th", { scope: "col" }, s)))),
        h("tbody", {}, topics.length
          ? topics.map((t) => h("tr", { "data-topic": t.topic },
              h("td", {}, h("a", { href: `#/${space.name}/queues/${encodeURIComponent(t.topic)}` }, t.topic)),
              countCells(t.counts)))
          : h("tr", {}, h("td", { colspan: 5 }, "No jobs.")))));
  } catch (error) {
    if (!(error instanceof DatastoreError)) throw error;
    if (stale(token)) return;
    fill(main, h("h1", {}, "Queues"), problemList(error),
      h("p", {}, "Queue listings need an API key of this space (a writing one to retry)."));
  }
}

export async function topicView(space, topic) {
  const main = document.getElementById("main");
  const status = h("p", { id: "retry-status", role: "status" });
  const token = viewToken();
  const render = async () => {
    try {
      const summary = (await send(space, "GET", `/queue/${encodeURIComponent(topic)}`, { params: { limit: 50 } })).body;
      if (stale(token)) return;
      fill(main,
        h("p", {}, h("a", { href: `#/${space.name}/queues` }, "← Queues")),
        h("h1", {}, `Queue ${topic}`),
        h("table", { id: "topic-counts" },
          h("caption", { className: "visually-hidden" }, "Jobs by status"),
          h("thead", {}, h("tr", {}, STATUSES.map((s) => h("th", { scope: "col" }, s)))),
          h("tbody", {}, h("tr", {}, countCells(summary.counts)))),
        h("h2", {}, "Dead letters"),
        status,
        h("table", { id: "dead-letters" },
          h("caption", { className: "visually-hidden" }, "Dead jobs, newest first"),
          h("thead", {}, h("tr", {}, ["job", "last error", "attempts", "payload", "failed at", ""].map((n) =>
            h("th", { scope: "col" }, n || h("span", { className: "visually-hidden" }, "actions"))))),
          h("tbody", {}, summary.dead.length
            ? summary.dead.map((job) => h("tr", { "data-job": job._id },
                h("td", {}, job._id), h("td", { className: "last-error" }, job.lastError ?? ""),
                h("td", {}, `${job.attempts}/${job.maxAttempts}`), h("td", {}, JSON.stringify(job.payload)),
                h("td", {}, job.updatedAt ?? ""),
                h("td", {}, h("button", { type: "button", className: "retry", "aria-label": `Retry job ${job._id}`, onclick: () => retry(job._id) }, "Retry"))))
            : h("tr", {}, h("td", { colspan: 6 }, "No dead letters.")))));
    } catch (error) {
      if (!(error instanceof DatastoreError)) throw error;
      if (stale(token)) return;
      fill(main, h("h1", {}, `Queue ${topic}`), problemList(error));
    }
  };
  const retry = async (id) => {
    try {
      await send(space, "POST", `/queue/${encodeURIComponent(topic)}/${encodeURIComponent(id)}/_retry`);
      await render();
      status.textContent = `Job ${id} queued again.`;
      announce(status.textContent);
    } catch (error) {
      if (!(error instanceof DatastoreError)) throw error;
      fill(status, problemList(error));
    }
  };
  await render();
}
