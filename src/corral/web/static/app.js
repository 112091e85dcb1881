// Corral's page glue, loaded as a file (the Content-Security-Policy forbids inline scripts).
"use strict";

function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : "";
}

// Every htmx request carries the session's CSRF token.
document.addEventListener("htmx:configRequest", (event) => {
  event.detail.headers["X-CSRF-Token"] = csrfToken();
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
