/* ragsite chat page: streams answers from POST /chat/stream (JSON Lines, see PROTOCOL.md).
 *
 * Everything that comes from the server (answers, document titles, thoughts, follow-ups) is
 * hostile data: it is put into the page with textContent / createElement only. The single
 * exception is `answer_html`, which the server has already sanitised (nh3).
 */
(function () {
  "use strict";

  const chat = document.getElementById("chat");
  const form = document.getElementById("composer");
  if (!chat || !form) return; // the "please log in" variant of the page

  const messagesEl = document.getElementById("messages");
  const emptyState = document.getElementById("empty-state");
  const input = document.getElementById("question");
  const sendBtn = document.getElementById("send");
  const stopBtn = document.getElementById("stop");
  const newChatBtn = document.getElementById("new-chat");
  const titleEl = document.getElementById("chat-title");
  const convList = document.getElementById("conversation-list");
  const convEmpty = document.getElementById("conversation-empty");

  const STREAM_URL = chat.dataset.streamUrl;
  const FEEDBACK_URL = chat.dataset.feedbackUrl;
  const PAGE_URL = chat.dataset.pageUrl || "/";
  const DEFAULT_TITLE = "Ask the knowledge base";

  let sessionState = chat.dataset.sessionState || null;
  let controller = null; // AbortController of the answer being streamed

  // ---- helpers -------------------------------------------------------------------------

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function csrfToken() {
    const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : chat.dataset.csrf || "";
  }

  /** Only same-site paths ("/source/3/?chunk=2") become links; anything else is dropped. */
  function safeHref(url) {
    return typeof url === "string" && /^\/(?!\/)/.test(url) && !/[\\\s]/.test(url) ? url : null;
  }

  function scrollToBottom() {
    const nearBottom =
      window.innerHeight + window.scrollY >= document.body.scrollHeight - 160;
    if (nearBottom) window.scrollTo(0, document.body.scrollHeight);
  }

  function setBusy(busy) {
    sendBtn.hidden = busy;
    stopBtn.hidden = !busy;
    sendBtn.disabled = busy;
    chat.classList.toggle("is-busy", busy);
    if (busy) stopBtn.focus({ preventScroll: true });
  }

  function autoGrow() {
    input.style.height = "auto";
    input.style.height = Math.min(input.scrollHeight, 240) + "px";
  }

  // ---- conversation state ----------------------------------------------------------------

  function setSessionState(id, question) {
    if (!id || id === sessionState) return;
    sessionState = id;
    chat.dataset.sessionState = id;
    const url = PAGE_URL + "?c=" + encodeURIComponent(id);
    history.replaceState(null, "", url);
    if (question && titleEl && titleEl.textContent === DEFAULT_TITLE) {
      titleEl.textContent = question.replace(/\s+/g, " ").slice(0, 80);
    }
    if (convList) {
      for (const a of convList.querySelectorAll("a[aria-current]")) a.removeAttribute("aria-current");
      let link = convList.querySelector('a[data-conversation="' + CSS.escape(id) + '"]');
      if (!link) {
        const li = el("li");
        link = el("a");
        link.href = url;
        link.dataset.conversation = id;
        link.append(
          el("span", "conv-title", (question || "New conversation").replace(/\s+/g, " ").slice(0, 80)),
          el("span", "conv-time", "just now"),
        );
        li.append(link);
        convList.prepend(li);
        if (convEmpty) convEmpty.hidden = true;
      }
      link.setAttribute("aria-current", "page");
    }
  }

  function newChat() {
    if (controller) controller.abort();
    sessionState = null;
    chat.dataset.sessionState = "";
    history.replaceState(null, "", PAGE_URL);
    for (const node of [...messagesEl.children]) if (node !== emptyState) node.remove();
    if (emptyState) emptyState.hidden = false;
    if (titleEl) titleEl.textContent = DEFAULT_TITLE;
    if (convList) {
      for (const a of convList.querySelectorAll("a[aria-current]")) a.removeAttribute("aria-current");
    }
    input.value = "";
    autoGrow();
    input.focus();
  }

  // ---- rendering -------------------------------------------------------------------------

  function addUserMessage(text) {
    if (emptyState) emptyState.hidden = true;
    const wrap = el("div", "msg msg-user");
    wrap.append(el("div", "bubble", text));
    messagesEl.append(wrap);
    return wrap;
  }

  function addAssistantMessage() {
    if (emptyState) emptyState.hidden = true;
    const wrap = el("div", "msg msg-assistant");
    const bubble = el("div", "bubble answer");
    bubble.dataset.state = "waiting";
    const typing = el("span", "typing");
    typing.setAttribute("aria-label", "Thinking");
    typing.append(el("span"), el("span"), el("span"));
    bubble.append(typing);
    const meta = el("div", "answer-meta");
    wrap.append(bubble, meta);
    messagesEl.append(wrap);
    return { wrap, bubble, meta, text: "", context: null, started: false };
  }

  /** Plain answer text with its [citation] markers turned into links, built with the DOM. */
  function renderPlainAnswer(container, text, sources) {
    container.replaceChildren();
    const byCitation = new Map();
    for (const s of sources || []) if (!byCitation.has(s.citation)) byCitation.set(s.citation, s);
    const paragraphs = String(text).split(/\n{2,}/);
    for (const para of paragraphs) {
      if (!para.trim()) continue;
      const p = el("p");
      let last = 0;
      const re = /\[([^\[\]<>]+)\]/g;
      let m;
      while ((m = re.exec(para)) !== null) {
        const source = byCitation.get(m[1]);
        const href = source && safeHref(source.url);
        if (!href) continue;
        p.append(document.createTextNode(para.slice(last, m.index)));
        const a = el("a", "citation", "[" + m[1] + "]");
        a.href = href;
        if (source.title) a.title = String(source.title);
        p.append(a);
        last = m.index + m[0].length;
      }
      p.append(document.createTextNode(para.slice(last)));
      container.append(p);
    }
  }

  function citedSources(text, sources) {
    const seen = new Set();
    const cited = [];
    for (const s of sources || []) {
      if (!s || typeof s.citation !== "string" || seen.has(s.citation)) continue;
      if (!String(text).includes("[" + s.citation + "]")) continue;
      seen.add(s.citation);
      cited.push(s);
    }
    return cited;
  }

  function renderSources(meta, text, context) {
    const sources = (context && context.data_points && context.data_points.sources) || [];
    const cited = citedSources(text, sources);
    if (!cited.length) return;
    const section = el("section", "sources");
    const heading = el("h3", "meta-heading", "Sources");
    section.append(heading);
    const list = el("ol", "source-list");
    for (const s of cited) {
      const li = el("li");
      const href = safeHref(s.url);
      const link = el(href ? "a" : "span", "source-link");
      if (href) link.href = href;
      link.append(el("span", "source-title", s.title || s.citation), el("span", "source-cite", s.citation));
      li.append(link);
      list.append(li);
    }
    section.append(list);
    meta.append(section);
  }

  function valueText(value) {
    if (value === null || value === undefined) return "";
    if (typeof value === "string") return value;
    if (typeof value === "number" || typeof value === "boolean") return String(value);
    return JSON.stringify(value);
  }

  function renderDescription(description) {
    if (typeof description === "string" || typeof description === "number") {
      return el("p", "thought-text", description);
    }
    if (Array.isArray(description)) {
      const list = el("ol", "thought-list");
      for (const item of description) {
        const li = el("li");
        if (item && typeof item === "object" && !Array.isArray(item)) {
          const label = item.title || item.citation;
          if (label) li.append(el("span", "thought-item-title", label));
          const rest = Object.entries(item)
            .filter(([k, v]) => k !== "title" && v !== null && v !== "" && valueText(v) !== label)
            .map(([k, v]) => k + ": " + valueText(v));
          if (rest.length) li.append(el("span", "thought-item-rest", rest.join(" · ")));
        } else {
          li.textContent = valueText(item);
        }
        list.append(li);
      }
      return list;
    }
    if (description && typeof description === "object") {
      const dl = el("dl", "thought-dl");
      for (const [k, v] of Object.entries(description)) {
        dl.append(el("dt", null, k), el("dd", null, valueText(v)));
      }
      return dl;
    }
    return el("p", "thought-text muted", valueText(description));
  }

  function renderThoughts(meta, context) {
    const thoughts = (context && Array.isArray(context.thoughts) && context.thoughts) || [];
    if (!thoughts.length) return;
    const details = el("details", "thoughts");
    details.append(el("summary", null, "Thought process"));
    const list = el("ol", "thought-steps");
    for (const t of thoughts) {
      if (!t || typeof t !== "object") continue;
      const li = el("li", "thought");
      li.append(el("h4", "thought-title", t.title || "Step"));
      li.append(renderDescription(t.description));
      if (t.props && typeof t.props === "object") {
        const props = Object.entries(t.props)
          .filter(([, v]) => v !== null && v !== "" && v !== undefined)
          .map(([k, v]) => k + ": " + valueText(v));
        if (props.length) li.append(el("p", "thought-props", props.join(" · ")));
      }
      list.append(li);
    }
    const timings = context.timings;
    if (timings && typeof timings === "object") {
      const parts = Object.entries(timings)
        .filter(([, v]) => typeof v === "number")
        .map(([k, v]) => k.replace(/_ms$/, "") + " " + Math.round(v) + " ms");
      if (parts.length) {
        const li = el("li", "thought");
        li.append(el("h4", "thought-title", "Timings"), el("p", "thought-props", parts.join(" · ")));
        list.append(li);
      }
    }
    details.append(list);
    meta.append(details);
  }

  function renderFollowups(meta, context) {
    const questions = (context && Array.isArray(context.followup_questions) && context.followup_questions) || [];
    const usable = questions.filter((q) => typeof q === "string" && q.trim());
    if (!usable.length) return;
    const nav = el("div", "followups");
    nav.setAttribute("role", "group");
    nav.setAttribute("aria-label", "Suggested follow-up questions");
    for (const q of usable) {
      const chip = el("button", "chip", q);
      chip.type = "button";
      chip.addEventListener("click", () => {
        if (!controller) ask(q);
      });
      nav.append(chip);
    }
    meta.append(nav);
  }

  const SVG_NS = "http://www.w3.org/2000/svg";
  const THUMBS_UP =
    "M7 10v12M15 5.88 14 10h5.83a2 2 0 0 1 1.92 2.56l-2.33 8A2 2 0 0 1 17.5 22H4a2 2 0 0 1-2-2v-8a2 2 0 0 1 2-2h2.76a2 2 0 0 0 1.79-1.11L12 2a3.13 3.13 0 0 1 3 3.88Z";
  const THUMBS_DOWN =
    "M17 14V2M9 18.12 10 14H4.17a2 2 0 0 1-1.92-2.56l2.33-8A2 2 0 0 1 6.5 2H20a2 2 0 0 1 2 2v8a2 2 0 0 1-2 2h-2.76a2 2 0 0 0-1.79 1.11L12 22a3.13 3.13 0 0 1-3-3.88Z";

  function iconButton(className, label, path) {
    const button = el("button", className);
    button.type = "button";
    button.title = label;
    button.setAttribute("aria-label", label);
    const svg = document.createElementNS(SVG_NS, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    const p = document.createElementNS(SVG_NS, "path");
    p.setAttribute("d", path);
    svg.append(p);
    button.append(svg);
    return button;
  }

  function renderFeedback(meta, messageId) {
    if (typeof messageId !== "number") return;
    const box = el("div", "feedback");
    box.append(el("span", "feedback-label", "Was this helpful?"));
    const up = iconButton("btn-icon feedback-up", "Helpful", THUMBS_UP);
    const down = iconButton("btn-icon feedback-down", "Not helpful", THUMBS_DOWN);
    const status = el("span", "feedback-status");
    status.setAttribute("role", "status");
    async function send(helpful) {
      up.disabled = down.disabled = true;
      try {
        const response = await fetch(FEEDBACK_URL, {
          method: "POST",
          headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
          body: JSON.stringify({ message_id: messageId, helpful }),
          credentials: "same-origin",
        });
        if (!response.ok) throw new Error(await errorText(response));
        box.replaceChildren(el("span", "feedback-thanks", "Thanks for the feedback!"));
      } catch (err) {
        up.disabled = down.disabled = false;
        status.textContent = err.message || "Could not send the feedback.";
      }
    }
    up.addEventListener("click", () => send(true));
    down.addEventListener("click", () => send(false));
    box.append(up, down, status);
    meta.append(box);
  }

  function renderMeta(turn) {
    turn.meta.replaceChildren();
    const context = turn.context || {};
    renderSources(turn.meta, turn.text, context);
    renderFollowups(turn.meta, context);
    const row = el("div", "meta-row");
    renderThoughts(row, context);
    renderFeedback(row, context.message_id);
    if (row.childNodes.length) turn.meta.append(row);
  }

  function markStopped(turn) {
    turn.bubble.dataset.state = "stopped";
    turn.bubble.removeAttribute("aria-busy");
    const typing = turn.bubble.querySelector(".typing");
    if (typing) typing.remove();
    turn.bubble.append(el("span", "stopped-note", " (stopped)"));
  }

  function showError(turn, message) {
    turn.bubble.dataset.state = "error";
    turn.bubble.removeAttribute("aria-busy");
    const typing = turn.bubble.querySelector(".typing");
    if (typing) typing.remove();
    const note = el("p", "answer-error", message || "Something went wrong. Please try again.");
    note.setAttribute("role", "alert");
    turn.bubble.append(note);
  }

  async function errorText(response) {
    try {
      const data = await response.json();
      if (data && typeof data.error === "string") return data.error;
    } catch (_) {
      /* not JSON */
    }
    return "The server answered " + response.status + ". Please try again.";
  }

  // ---- streaming -------------------------------------------------------------------------

  function handleEvent(turn, event, question) {
    if (!event || typeof event !== "object") return;
    if (typeof event.error === "string") {
      showError(turn, event.error);
      return;
    }
    if (event.type === "response.context") {
      if (event.session_state) setSessionState(String(event.session_state), question);
      const context = event.context || {};
      turn.context = Object.assign({}, turn.context || {}, context);
      if ("message_id" in context || "answer_html" in context || "followup_questions" in context) {
        finish(turn);
      }
    } else if (event.type === "response.reasoning.delta" && typeof event.delta === "string") {
      addThinking(turn, event.delta);
    } else if (event.type === "response.output_text.delta" && typeof event.delta === "string") {
      if (!turn.started) {
        turn.started = true;
        if (turn.thinking) turn.thinking.open = false;
        turn.bubble.replaceChildren();
        turn.bubble.dataset.state = "streaming";
        turn.bubble.setAttribute("aria-busy", "true");
        turn.stream = el("div", "answer-text");
        turn.bubble.append(turn.stream);
      }
      turn.text += event.delta;
      turn.stream.textContent = turn.text; // text only while streaming
      scrollToBottom();
    }
  }

  // A reasoning model's thinking, apart from the answer: open while it streams, folded once
  // the answer starts. Text only (textContent), never markup, never citations.
  function addThinking(turn, text) {
    if (!turn.thinking) {
      const panel = el("details", "thinking");
      panel.open = !turn.started;
      panel.append(el("summary", null, "Thinking"));
      turn.thinkingText = el("div", "thinking-text");
      panel.append(turn.thinkingText);
      turn.wrap.insertBefore(panel, turn.bubble);
      turn.thinking = panel;
      turn.thought = "";
    }
    turn.thought += text;
    turn.thinkingText.textContent = turn.thought;
    scrollToBottom();
  }

  function finish(turn) {
    const context = turn.context || {};
    turn.bubble.replaceChildren();
    const body = el("div", "answer-text");
    if (typeof context.answer_html === "string") {
      body.innerHTML = context.answer_html; // sanitised on the server (chat/render.py)
    } else {
      renderPlainAnswer(body, turn.text, context.data_points && context.data_points.sources);
    }
    turn.bubble.append(body);
    turn.bubble.dataset.state = "done";
    turn.bubble.removeAttribute("aria-busy");
    turn.done = true;
    renderMeta(turn);
    scrollToBottom();
  }

  async function ask(question) {
    question = question.trim();
    if (!question || controller) return;
    addUserMessage(question);
    const turn = addAssistantMessage();
    input.value = "";
    autoGrow();
    scrollToBottom();
    controller = new AbortController();
    setBusy(true);
    try {
      const response = await fetch(STREAM_URL, {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
        body: JSON.stringify({
          messages: [{ role: "user", content: question }],
          context: { overrides: { suggest_followup_questions: true, render_html: true } },
          session_state: sessionState,
        }),
        credentials: "same-origin",
        signal: controller.signal,
      });
      if (!response.ok || !response.body) {
        showError(turn, await errorText(response));
        return;
      }
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (value) buffer += decoder.decode(value, { stream: true });
        let newline;
        while ((newline = buffer.indexOf("\n")) >= 0) {
          const line = buffer.slice(0, newline).trim();
          buffer = buffer.slice(newline + 1);
          if (!line) continue;
          let event;
          try {
            event = JSON.parse(line);
          } catch (_) {
            continue; // a garbled line is skipped, not fatal
          }
          handleEvent(turn, event, question);
        }
        if (done) break;
      }
      buffer += decoder.decode();
      if (buffer.trim()) {
        try {
          handleEvent(turn, JSON.parse(buffer), question);
        } catch (_) {
          /* ignore an incomplete last line */
        }
      }
      if (!turn.done && turn.bubble.dataset.state !== "error") {
        if (turn.started) finish(turn);
        else showError(turn, "The answer ended unexpectedly. Please try again.");
      }
    } catch (err) {
      if (err && err.name === "AbortError") {
        if (!turn.done) markStopped(turn);
      } else {
        showError(turn, "Could not reach the server. Check your connection and try again.");
      }
    } finally {
      controller = null;
      setBusy(false);
      if (!turn.done && turn.context && turn.bubble.dataset.state === "stopped") renderMeta(turn);
      input.focus({ preventScroll: true });
    }
  }

  // ---- history (a conversation opened from the sidebar) ----------------------------------

  function loadInitialMessages() {
    const node = document.getElementById("initial-messages");
    if (!node) return;
    let data;
    try {
      data = JSON.parse(node.textContent);
    } catch (_) {
      return;
    }
    if (!Array.isArray(data) || !data.length) return;
    for (const m of data) {
      if (!m || typeof m.content !== "string") continue;
      if (m.role === "user") {
        addUserMessage(m.content);
        continue;
      }
      const turn = addAssistantMessage();
      if (typeof m.reasoning === "string" && m.reasoning) {
        turn.started = true;
        addThinking(turn, m.reasoning);
      }
      turn.text = m.content;
      turn.context = Object.assign({}, m.context || {});
      if (typeof m.id === "number") turn.context.message_id = m.id;
      if (typeof m.answer_html === "string") turn.context.answer_html = m.answer_html;
      if (m.interrupted) {
        turn.bubble.replaceChildren();
        const body = el("div", "answer-text");
        renderPlainAnswer(body, m.content, turn.context.data_points && turn.context.data_points.sources);
        turn.bubble.append(body);
        markStopped(turn);
        renderMeta(turn);
      } else {
        finish(turn);
      }
    }
    window.scrollTo(0, document.body.scrollHeight);
  }

  // ---- wiring ----------------------------------------------------------------------------

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    ask(input.value);
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  input.addEventListener("input", autoGrow);
  stopBtn.addEventListener("click", () => {
    if (controller) controller.abort();
  });
  if (newChatBtn) newChatBtn.addEventListener("click", newChat);

  loadInitialMessages();
  input.focus({ preventScroll: true });
})();
