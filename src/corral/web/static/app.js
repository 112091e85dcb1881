// Corral's page glue, loaded as a file (the Content-Security-Policy forbids inline scripts).
"use strict";

function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : "";
}

// Every htmx request carries the session's CSRF token. Elements that refresh by themselves
// (data-live: on events; data-background: polls) say so: the server does not count them as
// activity, so a page left open still ends its session after the idle timeout.
document.addEventListener("htmx:configRequest", (event) => {
  event.detail.headers["X-CSRF-Token"] = csrfToken();
  const element = event.detail.elt;
  if (element && (element.hasAttribute("data-live") || element.hasAttribute("data-background"))) {
    event.detail.headers["X-Corral-Background"] = "1";
  }
});

function flash(message) {
  const box = document.getElementById("flash");
  if (!box) return;
  box.textContent = message;
  box.hidden = false;
  box.focus();
  clearTimeout(box._timer);
  box._timer = setTimeout(() => { box.hidden = true; }, 15000);
}

// A refused or failed action: show the server's sentence (it says what to do).
document.addEventListener("htmx:responseError", (event) => {
  const xhr = event.detail.xhr;
  flash(xhr.responseText || `request failed (HTTP ${xhr.status})`);
});
document.addEventListener("htmx:sendError", () => {
  flash("Corral did not answer: check the connection and try again.");
});

window.corral = { csrfToken, flash };

// Live pages: one event stream (Server-Sent Events) per page. Every element marked
// data-live="vm task host power" re-fetches itself (its hx-get, on "corral:refresh") when events of
// those topics arrive: at most once a second while they keep coming, and always after the
// last one, so a burst never leaves a stale final state on the screen.
const REFRESH_EVERY_MS = 1000;
const REFRESH_SETTLE_MS = 150;

function scheduleRefresh(element, timers) {
  const state = timers.get(element) || { timer: null, last: 0 };
  timers.set(element, state);
  if (state.timer !== null) return; // the refresh already scheduled will show this event too
  const wait = Math.max(REFRESH_SETTLE_MS, state.last + REFRESH_EVERY_MS - Date.now());
  state.timer = setTimeout(() => {
    state.timer = null;
    state.last = Date.now();
    if (element.isConnected) window.htmx.trigger(element, "corral:refresh");
  }, wait);
}

function startLiveUpdates() {
  if (!document.querySelector("[data-live]")) return;
  const timers = new Map();
  const source = new EventSource("/api/v1/events");
  for (const topic of ["vm", "task", "host", "power"]) {
    source.addEventListener(topic, () => {
      for (const element of document.querySelectorAll(`[data-live~="${topic}"]`)) {
        scheduleRefresh(element, timers);
      }
    });
  }
  // Back after a break (the browser reconnects by itself, naming the last event it had, maybe
  // to another Corral instance) and the events missed are no longer kept: refresh everything.
  source.addEventListener("reload", () => {
    for (const element of document.querySelectorAll("[data-live]")) {
      scheduleRefresh(element, timers);
    }
  });
  // The server ends the stream when the session ends: no reconnecting then.
  source.addEventListener("end", () => source.close());
  window.corral.liveSource = source;
}

document.addEventListener("DOMContentLoaded", startLiveUpdates);
