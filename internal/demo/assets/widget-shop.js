"use strict";
(() => {
  // src/lib/demo.ts
  async function demoCall(name, body) {
    const r = await fetch("/demo/api/" + name, { method: "POST", body: body === void 0 ? "" : JSON.stringify(body) });
    const j = await r.json().catch(() => ({ ok: false, error: { code: "internal", message: `HTTP ${r.status}` } }));
    if (!j.ok) throw new Error(`${j.error.code}: ${j.error.message}`);
    return j.data;
  }
  function h(tag, attrs = {}, ...kids) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (typeof v === "function") el.addEventListener(k.replace(/^on/, ""), v);
      else if (v === true) el.setAttribute(k, "");
      else if (v !== false && v !== void 0) el.setAttribute(k, String(v));
    }
    for (const c of kids) if (c !== null && c !== void 0 && c !== false) el.append(c);
    return el;
  }

  // src/widget-shop.ts
  async function main() {
    const out = document.getElementById("embed");
    const who = document.getElementById("who");
    try {
      const setup = await demoCall("setup");
      const customers = setup.users.filter((u) => u.role === "user");
      const as = new URLSearchParams(location.search).get("as") || customers[0].uid;
      who.replaceChildren(...customers.map((u) => h("option", { value: u.uid, selected: u.uid === as }, u.nickname)));
      who.onchange = () => {
        location.search = "?as=" + encodeURIComponent(who.value);
      };
      document.getElementById("shop-name").textContent = setup.shop.name;
      const t = await demoCall("token", { uid: as });
      const tag = h("script", {
        src: "widget.js",
        "data-app": t.app,
        "data-shop": setup.shop.id,
        "data-token": t.token,
        "data-ws": t.ws_url,
        "data-title": setup.shop.name
      });
      out.textContent = tag.outerHTML.replace(/data-token="[^"]*"/, 'data-token="' + t.token.slice(0, 12) + '…"');
      document.body.append(tag);
    } catch (e) {
      out.textContent = "Could not set up the demo: " + e.message;
      out.classList.add("error");
    }
  }
  void main();
})();
