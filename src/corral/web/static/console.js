// The VNC console: noVNC (from the pinned npm package) over Corral's ticketed WebSocket proxy.
import RFB from "/vendor/novnc/core/rfb.js";
import { consoleTicket, csrfToken, Reconnector, wsUrl } from "/static/console-common.js";
import {
  imageName, insertIntoCdrom, isIso, sizeText, uploadImage, UploadError, UploadProgress,
} from "/static/upload.js";

const root = document.getElementById("console");
const vm = root.dataset.vm;
const screen = document.getElementById("screen");
const statusBox = document.getElementById("console-status");
const scale = document.getElementById("scale");
let rfb = null;

function status(text) { statusBox.textContent = text; }

const reconnector = new Reconnector(connect, status);

async function connect() {
  status("connecting…");
  let ticket;
  try {
    ticket = await consoleTicket(vm, "vnc");
  } catch (error) {
    reconnector.lost(error);
    return;
  }
  rfb = new RFB(screen, wsUrl(ticket.url), { wsProtocols: ["binary"], shared: true });
  rfb.viewOnly = ticket.view_only;
  rfb.scaleViewport = scale.checked;
  rfb.resizeSession = false;
  rfb.focusOnClick = true;
  rfb.addEventListener("connect", () => {
    reconnector.connected();
    status(ticket.view_only ? "connected (view only)" : "connected");
    screen.dataset.connected = "true";
    rfb.focus();
  });
  rfb.addEventListener("disconnect", (event) => {
    screen.dataset.connected = "false";
    rfb = null;
    reconnector.lost(new Error(event.detail.clean ? "disconnected" : "connection lost"));
  });
  rfb.addEventListener("clipboard", (event) => {
    const box = document.getElementById("clipboard-text");
    if (box) box.value = event.detail.text;
  });
}

scale.addEventListener("change", () => { if (rfb) rfb.scaleViewport = scale.checked; });

document.getElementById("fullscreen").addEventListener("click", async () => {
  // The whole console (toolbar included), so its buttons stay at hand in full screen.
  if (document.fullscreenElement) await document.exitFullscreen();
  else await root.requestFullscreen();
  if (rfb) rfb.focus();
});

// Keys a browser would not pass on (Ctrl-Alt-Del, Ctrl-Alt-Fn switch VTs, PrintScreen).
const K = { ctrl: [0xffe3, "ControlLeft"], alt: [0xffe9, "AltLeft"], print: [0xff61, "PrintScreen"] };
for (let n = 1; n <= 12; n += 1) K[`f${n}`] = [0xffbe + n - 1, `F${n}`];

function sendCombo(combo) {
  if (!rfb) return;
  const keys = combo.split("-").map((name) => K[name]);
  for (const [keysym, code] of keys) rfb.sendKey(keysym, code, true);
  for (const [keysym, code] of keys.reverse()) rfb.sendKey(keysym, code, false);
  rfb.focus();
}

const cad = document.getElementById("ctrl-alt-del");
if (cad) cad.addEventListener("click", () => { if (rfb) { rfb.sendCtrlAltDel(); rfb.focus(); } });
const sendKey = document.getElementById("send-key");
if (sendKey) sendKey.addEventListener("change", () => {
  if (sendKey.value) sendCombo(sendKey.value);
  sendKey.value = "";
});

// Paste as keystrokes: the server types it with the pacing QEMU needs (any guest, no agent).
const typeButton = document.getElementById("type-clipboard");
if (typeButton) typeButton.addEventListener("click", async () => {
  const text = document.getElementById("clipboard-text").value;
  if (!text) return;
  typeButton.disabled = true;
  status("typing…");
  try {
    const response = await fetch(`/api/v1/vms/${encodeURIComponent(vm)}/console/type`, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrfToken() },
      body: JSON.stringify({ text }),
    });
    if (!response.ok) {
      const body = await response.json().catch(() => ({}));
      window.corral.flash(body.detail || `typing failed (HTTP ${response.status})`);
    }
    status("connected");
  } finally {
    typeButton.disabled = false;
    if (rfb) rfb.focus();
  }
});
const sendClip = document.getElementById("send-clipboard");
if (sendClip) sendClip.addEventListener("click", () => {
  if (rfb) rfb.clipboardPasteFrom(document.getElementById("clipboard-text").value);
});

// Drop an ISO file on the screen: it is uploaded into the library of the VM's host, then
// inserted into the VM's CD-ROM drive (operators only: the drop zone exists for them).
function hasFiles(event) {
  return Boolean(event.dataTransfer) && Array.from(event.dataTransfer.types).includes("Files");
}

const uploadBox = document.getElementById("upload");
let dropping = false;

async function dropIso(files, progress) {
  if (files.length !== 1) {
    progress.show("refused", "drop one ISO file at a time");
    return;
  }
  const file = files[0];
  if (!(await isIso(file))) {
    progress.show("refused", `${file.name} is not an ISO image (no ISO 9660 or UDF signature): `
      + "only ISO images go into a CD-ROM drive");
    return;
  }
  const name = imageName(file.name);
  dropping = true;
  let uploaded = false;
  try {
    progress.show("uploading", `uploading ${name}…`, 0);
    await uploadImage(file, {
      name, host: root.dataset.host, kind: "iso",
      onProgress: (sent, total) => progress.show(
        "uploading", `uploading ${name}: ${sizeText(sent)} of ${sizeText(total)}`, sent / total),
    });
    uploaded = true;
    progress.show("inserting", `inserting ${name} into the CD-ROM drive…`, null);
    await insertIntoCdrom(vm, name);
    progress.show("done", `${name} is in the CD-ROM drive of ${vm}`, 1);
  } catch (error) {
    const detail = error instanceof UploadError ? error.message : String(error);
    progress.show("failed", uploaded
      ? `${name} was uploaded to the image library, but inserting it failed: ${detail}`
      : detail);
  } finally {
    dropping = false;
    if (rfb) rfb.focus();
  }
}

if (uploadBox && root.dataset.operator === "true") {
  const progress = new UploadProgress(uploadBox);
  // A file dropped beside the screen would make the browser leave the console to show it.
  for (const type of ["dragover", "drop"]) {
    document.addEventListener(type, (event) => { if (hasFiles(event)) event.preventDefault(); });
  }
  for (const type of ["dragenter", "dragover"]) {
    screen.addEventListener(type, (event) => {
      if (!hasFiles(event)) return;
      event.preventDefault();
      event.dataTransfer.dropEffect = "copy";
      screen.classList.add("dropping");
    });
  }
  screen.addEventListener("dragleave", (event) => {
    if (!screen.contains(event.relatedTarget)) screen.classList.remove("dropping");
  });
  screen.addEventListener("drop", (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault();
    screen.classList.remove("dropping");
    if (dropping) {
      window.corral.flash("an upload is running: wait until it is done, then drop the next file");
      return;
    }
    dropIso(Array.from(event.dataTransfer.files), progress);
  });
}

window.corralConsole = {
  get connected() { return screen.dataset.connected === "true"; },
  sendCombo,
};

connect();
