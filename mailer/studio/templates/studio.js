// mailer studio: live updates without reloading the page, keeping each frame's scroll.
// The server renders everything; this script fetches the same address again when a
// file changes (or a link or toggle is followed), swaps the regions marked data-live,
// and reloads a frame only when what it shows changed.
"use strict";

(() => {
  const token = document.querySelector('meta[name="studio-token"]').content;
  const scrolls = {};
  let refreshing = null;
  let again = false;
  let spamShown = "";

  const status = (text, state) => {
    const live = document.querySelector("[data-live-status]");
    live.textContent = text;
    live.dataset.state = state;
  };

  function followFrame(frame) {
    if (frame.dataset.followed) return;
    frame.dataset.followed = "1";
    frame.addEventListener("load", () => {
      const win = frame.contentWindow;
      const y = scrolls[frame.dataset.frame] || 0;
      if (y) win.scrollTo(0, y);
      win.addEventListener("scroll", () => { scrolls[frame.dataset.frame] = win.scrollY; }, { passive: true });
      document.body.dataset.framesLoaded = String(Number(document.body.dataset.framesLoaded || 0) + 1);
    });
  }

  function updateFrames(region, fresh) {
    const old = [...region.querySelectorAll("iframe[data-frame]")];
    const neu = [...fresh.querySelectorAll("iframe[data-frame]")];
    const same = old.length > 0 && old.length === neu.length
      && old.every((frame, i) => frame.dataset.frame === neu[i].dataset.frame);
    if (!same) {
      region.innerHTML = fresh.innerHTML;
      return;
    }
    old.forEach((frame, i) => {
      const src = neu[i].getAttribute("src");
      if (frame.getAttribute("src") !== src) frame.setAttribute("src", src);
    });
  }

  async function refresh(url) {
    if (refreshing) { again = true; return refreshing; }
    refreshing = (async () => {
      const response = await fetch(url || location.href, { headers: { Accept: "text/html" } });
      const doc = new DOMParser().parseFromString(await response.text(), "text/html");
      for (const region of document.querySelectorAll("[data-live]")) {
        const fresh = doc.querySelector(`[data-live="${region.dataset.live}"]`);
        if (!fresh) continue;
        if (region.dataset.live === "frames") updateFrames(region, fresh);
        else if (region.innerHTML !== fresh.innerHTML) region.innerHTML = fresh.innerHTML;
      }
      document.title = doc.title;
      bind();
      document.body.dataset.refreshes = String(Number(document.body.dataset.refreshes || 0) + 1);
    })();
    try { await refreshing; } catch (error) { status("could not refresh: is mailer still running?", "down"); }
    refreshing = null;
    if (again) { again = false; await refresh(); }
  }

  function navigate(url) {
    history.pushState(null, "", url);
    refresh(url);
  }

  async function loadSpam() {
    const box = document.querySelector("[data-spam-src]");
    if (!box || box.dataset.spamSrc === spamShown) return;
    spamShown = box.dataset.spamSrc;
    const response = await fetch(spamShown);
    const current = document.querySelector("[data-spam-src]");
    if (current && current.dataset.spamSrc === spamShown) current.innerHTML = await response.text();
  }

  async function sendTest(button) {
    const result = document.querySelector("[data-send-result]");
    button.disabled = true;
    result.textContent = "Sending…";
    try {
      const response = await fetch("/send-test", {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-Studio-Token": token },
        body: JSON.stringify({ issue: button.dataset.issue, variant: button.dataset.variant, member: button.dataset.member }),
      });
      const answer = await response.json();
      result.textContent = answer.message || answer.error;
      result.dataset.state = response.ok ? "ok" : "bad";
    } catch (error) {
      result.textContent = "The studio did not answer: is mailer still running?";
      result.dataset.state = "bad";
    }
    button.disabled = false;
  }

  async function searchMembers(input) {
    const list = document.querySelector("[data-member-results]");
    const words = input.value.trim();
    if (words.length < 2) { list.replaceChildren(); return; }
    const found = await (await fetch(`/members?q=${encodeURIComponent(words)}`)).json();
    if (input.value.trim() !== words) return;
    list.replaceChildren(...found.map((member) => {
      const item = document.createElement("li");
      const link = document.createElement("a");
      const params = new URLSearchParams(location.search);
      params.delete("variant");
      params.set("member", member.id);
      link.href = `?${params}`;
      link.dataset.nav = "";
      link.textContent = `${member.name || member.email} · ${member.organisation || member.email}`;
      item.append(link);
      return item;
    }));
    if (!found.length) list.innerHTML = "<li class=\"quiet\">Nobody on the list matches.</li>";
  }

  function bind() {
    document.querySelectorAll("iframe[data-frame]").forEach(followFrame);
    loadSpam();
  }

  document.addEventListener("click", (event) => {
    const link = event.target.closest("a[data-nav]");
    if (link && !event.metaKey && !event.ctrlKey && !event.shiftKey) {
      event.preventDefault();
      navigate(link.href);
      return;
    }
    const button = event.target.closest("[data-send-test]");
    if (button) sendTest(button);
  });
  document.addEventListener("change", (event) => {
    if (event.target.matches("[data-issue-picker], [data-variant-picker]")) navigate(event.target.value);
  });
  document.addEventListener("input", (event) => {
    if (event.target.matches("[data-member-search]")) searchMembers(event.target);
  });
  document.addEventListener("submit", (event) => {
    const form = event.target.closest("form[data-combine]");
    if (!form) return;
    event.preventDefault();
    const chosen = [...form.querySelectorAll("input:checked")].map((box) => box.value);
    const params = new URLSearchParams(location.search);
    params.delete("member");
    params.set("variant", chosen.join("+") || "general");
    navigate(`?${params}`);
  });
  window.addEventListener("popstate", () => refresh());

  const events = new EventSource("/events");
  events.addEventListener("hello", () => status("Live: saving a file updates this page", "up"));
  events.addEventListener("change", () => refresh());
  events.addEventListener("error", () => status("reconnecting to mailer…", "down"));
  bind();
})();
