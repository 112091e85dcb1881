// Shared by the VNC and serial console pages: tickets, WebSocket URLs, reconnecting.
"use strict";

export function csrfToken() {
  return document.querySelector('meta[name="csrf-token"]').content;
}

export class TicketError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

// A one-time ticket for this VM's console (30 s, one connection, bound to this session).
export async function consoleTicket(vm, kind) {
  const response = await fetch(`/api/v1/vms/${encodeURIComponent(vm)}/console/ticket`, {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrfToken() },
    body: JSON.stringify({ kind }),
  });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new TicketError(response.status, body.detail || `HTTP ${response.status}`);
  return body;
}

export function wsUrl(path) {
  const url = new URL(path, window.location.href);
  url.protocol = window.location.protocol === "https:" ? "wss:" : "ws:";
  return url.href;
}

// Reconnects with back-off after a dropped connection; stops when the session is over.
export class Reconnector {
  constructor(connect, status) {
    this.connect = connect;
    this.status = status;
    this.attempt = 0;
    this.timer = null;
    this.stopped = false;
  }
  connected() { this.attempt = 0; }
  lost(error) {
    if (this.stopped) return;
    if (error instanceof TicketError && error.status === 401) {
      this.stopped = true;
      this.status("your session has ended: log in again");
      window.location.assign("/login");
      return;
    }
    const delay = Math.min(10000, 500 * 2 ** this.attempt);
    this.attempt += 1;
    this.status(`${error ? error.message + ": " : ""}reconnecting in ${Math.round(delay / 1000)} s…`);
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.connect(), delay);
  }
  stop() { this.stopped = true; clearTimeout(this.timer); }
}
