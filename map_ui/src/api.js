// SPDX-License-Identifier: AGPL-3.0-or-later
// Reads and writes of the platform's HTTP APIs with the visitor's session cookie.
import { config } from "./config.js";

export class ApiError extends Error {
  constructor(status, code, description) {
    super(description || `HTTP ${status}`);
    this.status = status;
    this.code = code;
  }
}

async function answer(response) {
  const text = await response.text();
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = null;
  }
  if (!response.ok) {
    throw new ApiError(response.status, body?.code, body?.description || text.slice(0, 200));
  }
  return body;
}

/** GET a JSON document; `params` become the query string. */
export async function getJSON(path, params = {}) {
  const query = new URLSearchParams(Object.entries(params).filter(([, v]) => v !== undefined && v !== null));
  const url = query.size ? `${path}?${query}` : path;
  return answer(await fetch(url, {credentials: "same-origin", headers: {Accept: "application/json"}}));
}

/** POST JSON with the CSRF token Django expects from a session-authenticated page. */
export async function postJSON(path, body) {
  return answer(await fetch(path, {
    method: "POST", credentials: "same-origin",
    headers: {"Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": config.csrf},
    body: JSON.stringify(body),
  }));
}
