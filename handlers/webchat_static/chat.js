// Tawasul web chat: long-polls the bot's messages and posts the visitor's.
// Plain script, no dependencies. Every text goes in with textContent, never as markup.
"use strict";

(() => {
  const API = "/api/chat/messages";
  const FILES = "/api/chat/files";
  const HISTORY = "/api/chat/history";
  const MAX_FILE_BYTES = 10 * 1024 * 1024; // the server's limit too
  const FILE_TIMEOUT_MS = 120000;
  const STORE = "tawasul_chat_v1"; // this tab's transcript, so a reload keeps both sides
  // The session token, for where the browser refuses our cookie (a frame on another site).
  const SESSION_STORE = "tawasul_chat_session";
  const SESSION_HEADER = "X-Chat-Session";
  const SESSION_DAYS = 90; // as long as the server's cookie
  const KEEP = 200;
  const POLL_TIMEOUT_MS = 70000; // longer than the server's wait
  const POST_TIMEOUT_MS = 30000;
  const FIRST_DELAY_MS = 1000;
  const MAX_DELAY_MS = 30000;
  const GREETING = "السلام عليكم";

  // The page's words in each language, from the server's catalogue (the charity's own
  // wording included): a data block in the page, read once.
  const UI = JSON.parse(document.getElementById("words").textContent);

  const $ = (id) => document.getElementById(id);
  const scroller = $("scroller");
  const list = $("messages");
  const notice = $("notice");
  const form = $("composer");
  const box = $("text");
  const label = $("text-label");
  const sendButton = $("send");
  const attachButton = $("attach");
  const fileInput = $("file");
  const startButton = $("start");

  let language = "ar";
  let after = 0; // the id of the last bot message shown
  let entries = [];
  let choicesBox = null;
  let blocked = false;
  const troubles = new Set();
  const outgoing = [];
  let sending = false;
  let session = loadSession();
  // Posts wait for the first poll: it opens the session they are to be sent in.
  let markReady;
  const ready = new Promise((resolve) => {
    markReady = resolve;
  });

  // Showing messages

  const dirOf = (lang) => (lang === "en" ? "ltr" : "rtl");
  const nearBottom = () => scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 80;
  const scrollDown = () => {
    scroller.scrollTop = scroller.scrollHeight;
  };

  function clearChoices() {
    // Choices belong to the last bot message only: an old "3" means something else now.
    if (choicesBox) {
      choicesBox.remove();
      choicesBox = null;
    }
  }

  function dropWelcome() {
    const welcome = $("welcome");
    if (welcome) welcome.remove();
  }

  function showBot(message) {
    const stick = nearBottom();
    dropWelcome();
    clearChoices();
    const lang = message.language === "en" ? "en" : "ar";
    const bubble = document.createElement("p");
    bubble.className = "bubble bot";
    bubble.lang = lang;
    bubble.dir = dirOf(lang);
    if (typeof message.author === "string" && message.author) {
      // A person wrote this, not the bot: their role above their words.
      bubble.classList.add("staff");
      const author = document.createElement("span");
      author.className = "author";
      author.textContent = message.author;
      bubble.append(author);
    }
    bubble.append(String(message.text ?? ""));
    list.append(bubble);
    const choices = Array.isArray(message.choices) ? message.choices : [];
    if (choices.length) {
      choicesBox = document.createElement("div");
      choicesBox.className = message.inline ? "choices inline" : "choices";
      choicesBox.setAttribute("role", "group");
      choicesBox.setAttribute("aria-label", UI[lang].choices);
      choicesBox.lang = lang;
      choicesBox.dir = dirOf(lang);
      for (const choice of choices) {
        const payload = String(choice.payload);
        const shown = String(choice.label);
        const button = document.createElement("button");
        button.type = "button";
        button.className = "choice";
        button.textContent = shown;
        button.addEventListener("click", () => say(payload, payload, shown));
        choicesBox.append(button);
      }
      list.append(choicesBox);
    }
    setLanguage(lang);
    if (stick) scrollDown();
  }

  function showMine(text) {
    dropWelcome();
    clearChoices();
    const bubble = document.createElement("p");
    bubble.className = "bubble me";
    bubble.dir = "auto";
    bubble.textContent = text;
    list.append(bubble);
    scrollDown();
    return bubble;
  }

  function markFailed(bubble, reason) {
    const status = document.createElement("span");
    status.className = "status";
    status.lang = language;
    status.textContent = UI[language][reason];
    bubble.append(status);
  }

  function setLanguage(lang) {
    if (lang === language) return;
    language = lang;
    const ui = UI[lang];
    document.documentElement.lang = lang;
    document.documentElement.dir = dirOf(lang);
    box.placeholder = ui.placeholder;
    label.textContent = ui.label;
    sendButton.textContent = ui.send;
    attachButton.setAttribute("aria-label", ui.attach);
    attachButton.title = ui.attach;
    if (!blocked && troubles.size) notice.textContent = ui.offline;
  }

  function trouble(source, present) {
    if (present) troubles.add(source);
    else troubles.delete(source);
    if (blocked) return;
    notice.hidden = troubles.size === 0;
    notice.textContent = troubles.size ? UI[language].offline : "";
  }

  function showBlocked() {
    // The browser refuses our session cookie (a frame on another site, cookies off).
    blocked = true;
    markReady();
    const ui = UI[language];
    notice.textContent = `${ui.blocked} `;
    const link = document.createElement("a");
    link.href = location.href;
    link.target = "_blank";
    link.rel = "noopener";
    link.textContent = ui.openElsewhere;
    notice.append(link);
    notice.hidden = false;
    clearChoices();
    for (const control of [box, sendButton, attachButton, startButton]) {
      if (control) control.disabled = true;
    }
  }

  // This tab's transcript

  // Whether this tab had a transcript of its own to show again.
  function restore() {
    try {
      const saved = JSON.parse(sessionStorage.getItem(STORE) || "null");
      if (!saved || !Number.isSafeInteger(saved.after) || !Array.isArray(saved.entries)) {
        return false;
      }
      for (const entry of saved.entries) {
        if (entry && entry.who === "bot") showBot(entry);
        else if (entry && typeof entry.text === "string") showMine(entry.text);
      }
      entries = saved.entries;
      after = saved.after;
      scrollDown();
      return true;
    } catch (error) {
      return false; // storage off or unreadable: start from the server's history
    }
  }

  function remember(entry) {
    if (entry) {
      entries.push(entry);
      if (entries.length > KEEP) entries.splice(0, entries.length - KEEP);
    }
    try {
      sessionStorage.setItem(STORE, JSON.stringify({ after, entries }));
    } catch (error) {
      // Storage full or off: a reload then shows the bot's side only.
    }
  }

  // The session

  function loadSession() {
    try {
      const saved = JSON.parse(localStorage.getItem(SESSION_STORE) || "null");
      const fresh = saved && Date.now() - saved.at < SESSION_DAYS * 24 * 3600 * 1000;
      return fresh && typeof saved.token === "string" ? saved.token : null;
    } catch (error) {
      return null; // storage off: the cookie, or the token kept in memory below
    }
  }

  function keepSession(data) {
    // The server names a session only when it opened one for us.
    if (!data || typeof data.session !== "string") return;
    session = data.session;
    try {
      localStorage.setItem(SESSION_STORE, JSON.stringify({ token: session, at: Date.now() }));
    } catch (error) {
      // Kept for as long as the page is open.
    }
  }

  async function bodyOf(response) {
    try {
      return await response.json();
    } catch (error) {
      return null;
    }
  }

  // Network

  const sleepers = new Set();

  function sleep(ms) {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        sleepers.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      sleepers.add(done);
    });
  }

  const wakeAll = () => {
    for (const done of [...sleepers]) done();
  };
  const jitter = (ms) => ms / 2 + (Math.random() * ms) / 2;
  const longer = (ms) => Math.min(ms * 2, MAX_DELAY_MS);

  async function request(url, options, timeoutMs) {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), timeoutMs);
    try {
      const headers = { ...options.headers };
      if (session) headers[SESSION_HEADER] = session;
      return await fetch(url, {
        ...options,
        headers,
        credentials: "same-origin",
        cache: "no-store",
        signal: controller.signal,
      });
    } finally {
      clearTimeout(timer);
    }
  }

  async function poll() {
    let delay = FIRST_DELAY_MS;
    let unauthorized = 0;
    let first = true;
    while (!blocked) {
      // A tab with no transcript of its own starts from the server's history.
      const history = first && !restored;
      try {
        const response = await request(
          history ? HISTORY : `${API}?after=${after}${first ? "&wait=0" : ""}`,
          { headers: { Accept: "application/json" } },
          POLL_TIMEOUT_MS,
        );
        if (response.status === 401) {
          // The answer opened a new session; a second 401 means it could not be kept.
          keepSession(await bodyOf(response));
          unauthorized += 1;
          if (unauthorized >= 2) showBlocked();
          continue;
        }
        if (response.status === 429 || response.status === 503) {
          // Too many polls open (other tabs of this chat, or the server is full): wait as
          // asked, then ask again. Only a full server is worth telling the visitor about.
          trouble("poll", response.status === 503);
          const asked = Number(response.headers.get("Retry-After"));
          await sleep(jitter(1000 * (asked > 0 ? Math.min(asked, 60) : 5)));
          continue;
        }
        if (!response.ok) throw new Error(`poll ${response.status}`);
        const data = await response.json();
        first = false;
        markReady();
        unauthorized = 0;
        delay = FIRST_DELAY_MS;
        trouble("poll", false);
        for (const message of data.messages) {
          if (history && message.mine) {
            showMine(String(message.text ?? ""));
            remember({ who: "me", text: String(message.text ?? "") });
            continue;
          }
          if (!Number.isSafeInteger(message.id) || message.id <= after) continue;
          showBot(message);
          after = message.id;
          remember({
            who: "bot",
            text: message.text,
            language: message.language,
            choices: message.choices,
            inline: message.inline,
            author: message.author,
          });
        }
        if (Number.isSafeInteger(data.last) && data.last > after) {
          after = data.last;
          remember(null);
        }
      } catch (error) {
        trouble("poll", true);
        await sleep(jitter(delay));
        delay = longer(delay);
      }
    }
  }

  function newId() {
    if (crypto.randomUUID) return crypto.randomUUID(); // secure contexts only
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  function say(text, payload, shown) {
    if (blocked) return;
    const bubble = showMine(shown);
    bubble.classList.add("pending");
    remember({ who: "me", text: shown });
    outgoing.push({ id: newId(), text, payload, bubble });
    pump();
  }

  async function pump() {
    // One message at a time, so they reach the bot in the order they were written.
    if (sending) return;
    sending = true;
    try {
      await ready;
      while (outgoing.length) {
        const item = outgoing[0];
        const refused = await deliver(item);
        outgoing.shift();
        item.bubble.classList.remove("pending");
        if (refused) markFailed(item.bubble, refused);
      }
    } finally {
      sending = false;
    }
  }

  function sendFile(file) {
    if (blocked) return;
    const shown = `📎 ${file.name}`;
    const bubble = showMine(shown);
    bubble.classList.add("pending");
    remember({ who: "me", text: shown });
    outgoing.push({ id: newId(), file, bubble });
    pump();
  }

  function posting(item) {
    if (item.file) {
      const query = `id=${item.id}&name=${encodeURIComponent(item.file.name)}`;
      const type = { "Content-Type": "application/octet-stream", Accept: "application/json" };
      const options = { method: "POST", headers: type, body: item.file };
      return [`${FILES}?${query}`, options, FILE_TIMEOUT_MS];
    }
    const body = JSON.stringify({ text: item.text, id: item.id, payload: item.payload });
    const type = { "Content-Type": "application/json", Accept: "application/json" };
    return [API, { method: "POST", headers: type, body }, POST_TIMEOUT_MS];
  }

  // Sends one message or file: null once the server took it, else why it was refused
  // (a key of UI).
  async function deliver(item) {
    if (item.file && item.file.size > MAX_FILE_BYTES) return "tooBig";
    const [url, options, timeoutMs] = posting(item);
    let delay = FIRST_DELAY_MS;
    for (;;) {
      try {
        const response = await request(url, options, timeoutMs);
        if (response.ok) {
          keepSession(await bodyOf(response));
          trouble("post", false);
          return null;
        }
        if (response.status < 500 && response.status !== 408 && response.status !== 429) {
          trouble("post", false);
          // The server refused it; sending it again will not help.
          if (item.file && response.status === 413) return "tooBig";
          if (item.file && response.status === 415) return "fileType";
          return "failed";
        }
      } catch (error) {
        // Network failure or timeout: the same id lets the server drop a repeat.
      }
      trouble("post", true);
      await sleep(jitter(delay));
      delay = longer(delay);
    }
  }

  // The composer

  function grow() {
    box.style.height = "auto";
    box.style.height = `${box.scrollHeight + 2}px`;
  }

  function submit() {
    const text = box.value;
    if (!text.trim() || blocked) return;
    box.value = "";
    grow();
    say(text, null, text);
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    submit();
    box.focus();
  });
  box.addEventListener("keydown", (event) => {
    // Enter sends, Shift+Enter starts a new line; never while a keyboard is composing.
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing && event.keyCode !== 229) {
      event.preventDefault();
      submit();
    }
  });
  box.addEventListener("input", grow);
  attachButton.addEventListener("click", () => fileInput.click());
  fileInput.addEventListener("change", () => {
    for (const file of fileInput.files) sendFile(file);
    fileInput.value = "";
  });
  box.addEventListener("focus", () => setTimeout(scrollDown, 300)); // after the keyboard opens
  if (startButton) startButton.addEventListener("click", () => say(GREETING, null, GREETING));
  window.addEventListener("online", wakeAll);
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) wakeAll();
  });

  const restored = restore();
  poll();
})();
