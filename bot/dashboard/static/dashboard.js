// The handoff inbox, live: beneficiaries' new messages are appended to their conversation
// as they arrive (server-sent events). Text is only ever set with textContent.
"use strict";

(function () {
  const inbox = document.getElementById("inbox");
  const status = document.getElementById("live-status");
  const banner = document.getElementById("live-banner");
  if (!inbox || !status || !banner || !("EventSource" in window)) {
    return;
  }
  const arabic = document.documentElement.lang === "ar";
  const inLabel = inbox.dataset.in || "";
  const outLabel = inbox.dataset.out || "";
  const digits = (text) => (arabic ? text.replace(/[0-9]/g, (d) => "٠١٢٣٤٥٦٧٨٩"[Number(d)]) : text);

  const showBanner = () => {
    banner.hidden = false;
  };

  const append = (data) => {
    const id = String(Number(data.handoff));
    const list = inbox.querySelector('ol.conversation[data-handoff="' + id + '"]');
    if (!list) {
      showBanner(); // a conversation this page does not show yet
      return;
    }
    const incoming = data.direction !== "out";
    const item = document.createElement("li");
    item.className = "line " + (incoming ? "in" : "out");
    const who = document.createElement("span");
    who.className = "who";
    who.textContent = incoming ? inLabel : outLabel;
    const text = document.createElement("p");
    text.dir = "auto";
    text.textContent = String(data.text || "");
    const time = document.createElement("time");
    time.textContent = digits(String(data.at || ""));
    item.append(who, text, time);
    list.append(item);
    list.scrollTop = list.scrollHeight;
  };

  const source = new EventSource("/staff/handoffs/events");
  source.addEventListener("open", () => {
    status.dataset.state = "on";
    status.textContent = status.dataset.on || "";
  });
  source.addEventListener("error", () => {
    status.dataset.state = "off";
    status.textContent = status.dataset.off || "";
  });
  source.addEventListener("message", (event) => {
    try {
      append(JSON.parse(event.data));
    } catch (error) {
      showBanner();
    }
  });
  source.addEventListener("handoff", showBanner);
  window.addEventListener("pagehide", () => source.close());
  document.querySelectorAll(".conversation").forEach((list) => {
    list.scrollTop = list.scrollHeight;
  });
})();
