// The serial console: xterm.js (from the pinned npm package) over the ticketed WebSocket.
"use strict";
(async () => {
  const { consoleTicket, Reconnector, wsUrl } = await import("/static/console-common.js");
  const vm = document.getElementById("serial").dataset.vm;
  const statusBox = document.getElementById("terminal-status");
  const term = new window.Terminal({ convertEol: false, cursorBlink: true, scrollback: 5000 });
  const fit = new window.FitAddon.FitAddon();
  term.loadAddon(fit);
  term.open(document.getElementById("terminal"));
  fit.fit();
  window.addEventListener("resize", () => fit.fit());
  const encoder = new TextEncoder();
  let socket = null;
  const status = (text) => { statusBox.textContent = text; };
  const reconnector = new Reconnector(connect, status);
  term.onData((data) => {
    if (socket && socket.readyState === WebSocket.OPEN) socket.send(encoder.encode(data));
  });
  async function connect() {
    status("connecting…");
    let ticket;
    try {
      ticket = await consoleTicket(vm, "serial");
    } catch (error) {
      reconnector.lost(error);
      return;
    }
    socket = new WebSocket(wsUrl(ticket.url), ["binary"]);
    socket.binaryType = "arraybuffer";
    socket.onopen = () => {
      reconnector.connected();
      status(ticket.view_only ? "connected (view only)" : "connected");
      term.focus();
    };
    socket.onmessage = (event) => term.write(new Uint8Array(event.data));
    socket.onclose = (event) => {
      socket = null;
      reconnector.lost(new Error(event.reason || "connection closed"));
    };
  }
  window.corralTerminal = { term };
  connect();
})();
