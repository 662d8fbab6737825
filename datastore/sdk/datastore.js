/*! datastore browser SDK v__VERSION__ — served by the datastore at /__sdk/datastore.js */
// A dependency-free ES module: import { Datastore } from "https://host/__sdk/datastore.js";

export class DatastoreError extends Error {
  constructor(status, problem) {
    super(`${status} ${problem.title || ""}${problem.detail ? ": " + problem.detail : ""}`);
    this.name = "DatastoreError";
    this.status = status;
    this.title = problem.title || "";
    this.detail = problem.detail;
    this.invalidParams = problem["invalid-params"] || [];
    this.problem = problem;
  }
}

export class Datastore {
  /**
   * @param {{serviceURL: string, jwtURL?: string, jwtCallback?: (payload: object) => Promise<string>,
   *          jwtPayload?: object, apiKey?: string}} settings (apiKey: sent as x-apikey)
   */
  constructor(settings) {
    if (!settings || !settings.serviceURL) throw new Error("serviceURL is required");
    this.settings = { ...settings, serviceURL: settings.serviceURL.replace(/\/+$/, "") };
    this.token = null;
    // Read-your-writes with a read replica: the last write's X-Datastore-Consistency,
    // sent back with every later request.
    this.consistency = null;
  }

  get usesTokens() {
    return Boolean(this.settings.jwtURL || this.settings.jwtCallback);
  }

  async fetchToken() {
    const payload = this.settings.jwtPayload || {};
    if (this.settings.jwtCallback) {
      this.token = await this.settings.jwtCallback(payload);
    } else {
      const response = await fetch(this.settings.jwtURL, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(payload),
      });
      if (!response.ok) throw new DatastoreError(response.status, await problemOf(response));
      this.token = (await response.json()).token;
    }
    return this.token;
  }

  async request(method, path, { body, params, headers } = {}, retry = true) {
    if (this.usesTokens && !this.token) await this.fetchToken();
    const url = new URL(path.startsWith("http") ? path : this.settings.serviceURL + path);
    for (const [key, value] of Object.entries(params || {})) {
      if (value !== undefined && value !== null) url.searchParams.set(key, String(value));
    }
    const sent = { ...(headers || {}) };
    if (this.token) sent.Authorization = `Bearer ${this.token}`;
    if (this.settings.apiKey) sent["x-apikey"] = this.settings.apiKey;
    if (this.consistency) sent["X-Datastore-Consistency"] = this.consistency;
    if (body !== undefined) sent["Content-Type"] = "application/json";
    const response = await fetch(url, {
      method,
      headers: sent,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (response.status === 401 && retry && this.usesTokens) {
      this.token = null; // expired or revoked: fetch a new token once, then try again
      return this.request(method, path, { body, params, headers }, false);
    }
    const consistency = response.headers.get("X-Datastore-Consistency");
    if (consistency) this.consistency = consistency;
    if (!response.ok) throw new DatastoreError(response.status, await problemOf(response));
    if (response.status === 204) return null;
    const text = await response.text();
    return text ? JSON.parse(text) : null;
  }

  collection(name) {
    return new Collection(this, "/" + name.replace(/^\/+|\/+$/g, ""));
  }
}

async function problemOf(response) {
  try {
    return await response.json();
  } catch {
    return { title: response.statusText };
  }
}

export class Collection {
  constructor(datastore, path, options = {}) {
    this.datastore = datastore;
    this.path = path;
    this.options = options;
    this.links = { prev: null, next: null };
  }

  with(option) {
    return new Collection(this.datastore, this.path, { ...this.options, ...option });
  }

  /** A Squiz filter: document.category===music;(document.cost<10,document.cost>=100) */
  filter(expression) {
    return this.with({ filters: expression });
  }

  /** A Squiz sort: +document.name,-document.$createdDatetime */
  sort(expression) {
    return this.with({ sort: expression });
  }

  /** Page size: get() then answers one page, with getNextPage() / getPrevPage(). */
  limit(size) {
    return this.with({ limit: size });
  }

  doc(id) {
    return new Doc(this.datastore, `${this.path}/${encodeURIComponent(id)}`);
  }

  async get() {
    const params = { filters: this.options.filters, sort: this.options.sort };
    if (!this.options.limit) return this.datastore.request("GET", this.path, { params });
    params["page[size]"] = this.options.limit;
    params["page[v]"] = 2;
    return this.takePage(await this.datastore.request("GET", this.path, { params }));
  }

  takePage(page) {
    this.links = page.links || { prev: null, next: null };
    return page.data;
  }

  hasNextPage() {
    return Boolean(this.links.next);
  }

  hasPrevPage() {
    return Boolean(this.links.prev);
  }

  async getNextPage() {
    if (!this.links.next) return [];
    const origin = new URL(this.datastore.settings.serviceURL).origin;
    return this.takePage(await this.datastore.request("GET", origin + this.links.next));
  }

  async getPrevPage() {
    if (!this.links.prev) return [];
    const origin = new URL(this.datastore.settings.serviceURL).origin;
    return this.takePage(await this.datastore.request("GET", origin + this.links.prev));
  }

  /** The Codehooks dialect: a Mongo-style query and optional hints. */
  query(q, hints) {
    const params = { q: JSON.stringify(q || {}) };
    if (hints) params.h = JSON.stringify(hints);
    return this.datastore.request("GET", this.path, { params });
  }

  add(body) {
    return this.datastore.request("POST", this.path, { body });
  }

  /**
   * Live changes: callback({id, event, data}) for each change of this collection the caller may
   * read (event: created / updated / deleted; data: the document as GET shows it, {id} for a
   * deletion). Server-Sent Events read with fetch (so the token goes in a header), reconnecting
   * with the last id after a drop or an expired token. Returns the unsubscribe function.
   * @param {(change: {id: string, event: string, data: object}) => void} callback
   * @param {{filters?: string, q?: object, since?: string, onError?: (e: Error) => void}} options
   */
  subscribe(callback, options = {}) {
    const stop = new AbortController();
    const params = { filters: options.filters ?? this.options.filters, since: options.since };
    if (options.q) params.q = JSON.stringify(options.q);
    follow(this.datastore, this.path + "/_changes", params, callback, options, stop.signal);
    return () => stop.abort();
  }
}

async function follow(datastore, path, params, callback, options, signal) {
  let last = params.since;
  let delay = 1000;
  while (!signal.aborted) {
    try {
      if (datastore.usesTokens && !datastore.token) await datastore.fetchToken();
      const url = new URL(datastore.settings.serviceURL + path);
      for (const [key, value] of Object.entries(params)) {
        if (value !== undefined && value !== null && key !== "since") url.searchParams.set(key, value);
      }
      const headers = { Accept: "text/event-stream" };
      if (datastore.token) headers.Authorization = `Bearer ${datastore.token}`;
      if (datastore.settings.apiKey) headers["x-apikey"] = datastore.settings.apiKey;
      if (last) headers["Last-Event-ID"] = last;
      const response = await fetch(url, { headers, signal });
      if (response.status === 401 && datastore.usesTokens) {
        datastore.token = null; // expired: a new token, then reconnect from the last id
        continue;
      }
      if (!response.ok) throw new DatastoreError(response.status, await problemOf(response));
      delay = 1000;
      for await (const event of events(response.body, signal)) {
        if (event.retry) delay = event.retry;
        if (!event.event) continue;
        last = event.id;
        callback({ id: event.id, event: event.event, data: JSON.parse(event.data) });
      }
      if (datastore.usesTokens) datastore.token = null; // the stream ends when the token expires
    } catch (error) {
      if (signal.aborted) return;
      if (options.onError) options.onError(error);
      if (error instanceof DatastoreError && error.status < 500 && error.status !== 401) return;
    }
    if (!signal.aborted) await new Promise((resolve) => setTimeout(resolve, delay));
  }
}

async function* events(body, signal) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  try {
    while (!signal.aborted) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += decoder.decode(value, { stream: true }).replace(/\r\n?/g, "\n");
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const event = { data: "" };
        for (const line of block.split("\n")) {
          if (!line || line.startsWith(":")) continue;
          const colon = line.indexOf(":");
          const name = colon < 0 ? line : line.slice(0, colon);
          const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
          if (name === "data") event.data += (event.data ? "\n" : "") + value;
          else if (name === "retry") event.retry = Number(value);
          else event[name] = value;
        }
        yield event;
      }
    }
  } finally {
    reader.releaseLock();
  }
}

export class Doc {
  constructor(datastore, path) {
    this.datastore = datastore;
    this.path = path;
  }

  collection(name) {
    return new Collection(this.datastore, `${this.path}/${name.replace(/^\/+|\/+$/g, "")}`);
  }

  get() {
    return this.datastore.request("GET", this.path);
  }

  set(body) {
    return this.datastore.request("PUT", this.path, { body });
  }

  update(body) {
    return this.datastore.request("PATCH", this.path, { body });
  }

  delete() {
    return this.datastore.request("DELETE", this.path);
  }
}
