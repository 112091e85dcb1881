// Uploads to the image library: the file itself is the request body (no multipart, nothing
// spooled), with the browser's upload progress. Used by the Images page and the console's drop
// zone. The server checks everything again; the checks here only spare a useless upload.
"use strict";
import { csrfToken } from "/static/console-common.js";

const ISO_MAGIC_OFFSET = 32769;

// A library name from a file name: letters, digits, ".", "_", "-"; starting with a letter or
// digit; at most 63 characters (what the API accepts).
export function imageName(fileName) {
  const name = fileName
    .replace(/[^A-Za-z0-9._-]+/g, "-")
    .replace(/\.{2,}/g, ".")
    .replace(/^[^A-Za-z0-9]+/, "")
    .slice(0, 63);
  return name || "image";
}

// ISO 9660 ("CD001") or UDF ("BEA01") at byte 32769, as the server checks.
export async function isIso(file) {
  if (file.size < ISO_MAGIC_OFFSET + 5) return false;
  const magic = await file.slice(ISO_MAGIC_OFFSET, ISO_MAGIC_OFFSET + 5).text();
  return magic === "CD001" || magic === "BEA01";
}

export function sizeText(bytes) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit += 1; }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${units[unit]}`;
}

export class UploadError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function problemDetail(response) {
  const body = await response.json().catch(() => ({}));
  return body.detail || `HTTP ${response.status}`;
}

// PUT `file` as image `name` (host and kind optional). `onProgress(sent, total)` follows the
// bytes the browser has sent. Resolves with the API's answer ({image, task}).
export function uploadImage(
  file, { name, host = "", kind = "", domain = "", onProgress = () => {} },
) {
  return new Promise((resolve, reject) => {
    const params = new URLSearchParams();
    if (host) params.set("host", host);
    if (domain && domain !== "local") params.set("domain", domain);
    if (kind) params.set("kind", kind);
    const xhr = new XMLHttpRequest();
    xhr.open("PUT", `/api/v1/images/${encodeURIComponent(name)}?${params}`);
    xhr.withCredentials = true;
    xhr.setRequestHeader("X-CSRF-Token", csrfToken());
    xhr.setRequestHeader("Content-Type", "application/octet-stream");
    xhr.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) onProgress(event.loaded, event.total);
    });
    xhr.addEventListener("load", () => {
      let body = {};
      try { body = JSON.parse(xhr.responseText); } catch { body = {}; }
      if (xhr.status === 201) resolve(body);
      else reject(new UploadError(xhr.status, body.detail || `upload failed (HTTP ${xhr.status})`));
    });
    xhr.addEventListener("error", () => reject(new UploadError(0,
      "the upload broke off (connection lost or refused): Corral keeps nothing of it")));
    xhr.addEventListener("abort", () => reject(new UploadError(0, "upload cancelled")));
    xhr.send(file);
  });
}

// Insert image `name` into the CD-ROM drive of VM `vm`; resolves with the VM.
export async function insertIntoCdrom(vm, name) {
  const response = await fetch(`/api/v1/vms/${encodeURIComponent(vm)}/cdrom`, {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrfToken() },
    body: JSON.stringify({ image: name }),
  });
  if (!response.ok) throw new UploadError(response.status, await problemDetail(response));
  return response.json();
}

// The progress box: <div id="upload"> with <progress id="upload-bar"> and <span id="upload-text">.
// Its data-state (uploading, inserting, done, failed, refused) is there for people's styles and
// for tests.
export class UploadProgress {
  constructor(box) {
    this.box = box;
    this.bar = box.querySelector("progress");
    this.text = box.querySelector("[id$=-text]");
  }
  show(state, message, fraction = null) {
    this.box.hidden = false;
    this.box.dataset.state = state;
    if (fraction === null) this.bar.removeAttribute("value");
    else this.bar.value = fraction;
    this.bar.hidden = state === "refused";
    this.text.textContent = message;
  }
}
