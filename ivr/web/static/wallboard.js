// Tổng quan: the server pushes the board (server-sent events); this only draws it.
// Every value is set as text (textContent), never as HTML: a caller-ID cannot inject markup.
"use strict";
(function () {
  const STATES = { menu: "Trong menu", ringing: "Đang đổ chuông", talking: "Đang đàm thoại", voicemail: "Để lại lời nhắn" };
  const live = document.getElementById("live");
  let board = null;

  function cell(row, text, cls) {
    const td = document.createElement("td");
    td.textContent = text;
    if (cls) td.className = cls;
    row.appendChild(td);
  }

  function since(iso, now) {
    const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
    return Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0");
  }

  function draw() {
    if (!board) return;
    const now = Date.now();
    for (const el of document.querySelectorAll("#today [data-k]")) {
      const v = board.today[el.dataset.k];
      el.textContent = v === null || v === undefined ? "—" : (el.dataset.k === "service_level" ? v + "%" : String(v));
    }
    const branches = document.querySelector("#branches tbody");
    branches.replaceChildren();
    for (const [name, counts] of Object.entries(board.branches)) {
      const tr = document.createElement("tr");
      cell(tr, name);
      for (const state of Object.keys(STATES)) cell(tr, String(counts[state] || 0), "num");
      cell(tr, counts.waiting_since ? since(counts.waiting_since, now) : "—", "num");
      branches.appendChild(tr);
    }
    const calls = document.querySelector("#calls tbody");
    calls.replaceChildren();
    for (const c of board.calls) {
      const tr = document.createElement("tr");
      tr.className = "call";
      tr.dataset.state = c.state;
      cell(tr, c.caller, "num");
      cell(tr, c.branch || "—");
      cell(tr, c.unit || "—");
      cell(tr, STATES[c.state] || c.state, "state-" + c.state);
      cell(tr, since(c.since, now));
      cell(tr, since(c.started, now));
      calls.appendChild(tr);
    }
    const phones = document.querySelector("#phones tbody");
    phones.replaceChildren();
    for (const p of board.phones) {
      const tr = document.createElement("tr");
      tr.className = "phone";
      tr.dataset.state = p.state;
      cell(tr, p.endpoint, "num");
      cell(tr, p.owner || "—");
      cell(tr, p.label, "phone-" + p.state);
      cell(tr, since(p.since, now), "num");
      phones.appendChild(tr);
    }
    if (!board.phones.length) {
      const tr = document.createElement("tr");
      cell(tr, "Chưa có bộ điều khiển nào gửi trạng thái máy bàn.", "muted");
      tr.firstChild.colSpan = 4;
      phones.appendChild(tr);
    }
    if (!board.calls.length) {
      const tr = document.createElement("tr");
      cell(tr, "Không có cuộc gọi nào đang diễn ra.", "muted");
      tr.firstChild.colSpan = 6;
      calls.appendChild(tr);
    }
  }

  const source = new EventSource("/wallboard/events");
  source.addEventListener("board", (e) => {
    board = JSON.parse(e.data);
    live.textContent = "cập nhật " + new Date().toLocaleTimeString("vi-VN", { timeZone: "Asia/Ho_Chi_Minh" });
    live.dataset.version = String(board.version);
    draw();
  });
  source.onerror = () => { live.textContent = "mất kết nối, đang thử lại…"; };
  setInterval(draw, 1000);
})();
