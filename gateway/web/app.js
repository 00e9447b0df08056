// The owner app: boot, the screens' router, the live feed and the owner's acts.
import { api, ApiError, setCsrf } from "./api.js";
import * as passkey from "./passkey.js";
import * as screens from "./screens.js";
import * as visitors from "./visitors.js";

const h = screens.h;
const main = document.getElementById("main");
const nav = document.getElementById("nav");
const toast = document.getElementById("toast");

const app = {
  me: null,
  notices: [],
  source: null,
  lastSeq: 0,

  say(text) {
    toast.textContent = text;
    clearTimeout(app.toastTimer);
    app.toastTimer = setTimeout(() => { toast.textContent = ""; }, 6000);
  },

  shown: "",

  show(nodes, title) {
    // Where the keyboard's focus was, if this only refreshes the same screen (a notice came).
    const screen = `${location.hash}|${title}`;
    const refresh = screen === app.shown;
    const focused = refresh && main.contains(document.activeElement) ? document.activeElement : null;
    const focusedId = focused && focused.id;
    main.replaceChildren(...[nodes].flat(3).filter(Boolean));
    document.title = title ? `${title} — Threshold` : "Threshold";
    app.shown = screen;
    if (!refresh) {
      // A new screen: its content takes the focus, so a screen reader reads it.
      main.focus({ preventScroll: true });
    } else if (focused) {
      const again = focusedId && document.getElementById(focusedId);
      (again || main).focus({ preventScroll: true });
    }
    // Otherwise a refresh leaves the focus where the owner put it (the header, a link).
  },

  go(route) {
    if (location.hash === `#${route}`) render();
    else location.hash = route;
  },

  signedIn(data) {
    app.me = { ...(app.me || {}), ...data };
    setCsrf(data.csrf);
    nav.hidden = false;
    app.follow();
  },

  signedOut(message) {
    app.me = null;
    setCsrf("");
    nav.hidden = true;
    if (app.source) { app.source.close(); app.source = null; }
    app.show(screens.signIn(app, message), "Sign in");
  },

  // -- the live feed ---------------------------------------------------------------------------
  follow() {
    if (app.source) app.source.close();
    const source = new EventSource(`/v1/app/events/stream?after=${app.lastSeq}`);
    app.source = source;
    source.addEventListener("open", () => { window.__feedOpen = true; });
    source.addEventListener("notice", (event) => {
      app.lastSeq = Number(event.lastEventId) || app.lastSeq;
      const notice = JSON.parse(event.data);
      app.notices.unshift(notice);
      app.notices.length = Math.min(app.notices.length, 50);
      if (notice.alert) app.alert(notice);
      const route = currentRoute();
      if (route.name === "now" || (route.name === "approve" && route.arg === notice.session)) soon();
    });
    source.addEventListener("error", async () => {
      // The stream ended: the gateway restarted, the network went, or this device was
      // revoked. Only the last one needs the owner: ask who we are.
      try {
        await api("GET", "/v1/app/me");
      } catch (err) {
        if (err instanceof ApiError && err.status === 401) {
          app.signedOut("This device was signed out.");
        }
      }
    });
  },

  alert(notice) {
    app.say(notice.text);
    if ("Notification" in window && Notification.permission === "granted") {
      const screen = notice.screen === "approve" ? `approve/${notice.session}` : notice.screen;
      navigator.serviceWorker?.ready.then((reg) => reg.showNotification("Threshold", {
        body: notice.text, tag: notice.session || notice.kind, data: { screen },
      })).catch(() => new Notification("Threshold", { body: notice.text }));
    }
  },

  notificationButton() {
    if (!("Notification" in window) || Notification.permission !== "default") return null;
    return h("button", { class: "secondary", onclick: async () => {
      await Notification.requestPermission();
      render();
    } }, "Turn on notifications");
  },

  // -- ceremonies ------------------------------------------------------------------------------
  async enroll() {
    const token = enrollToken();
    try {
      const { ceremony, options } = await api("POST", "/v1/app/enroll/options", { token });
      const credential = await passkey.create(options);
      const data = await api("POST", "/v1/app/enroll", { ceremony, credential });
      history.replaceState(null, "", "/app/#now");
      app.signedIn(data);
      app.say("This device is enrolled.");
      render();
    } catch (err) {
      app.show(screens.refused("Cannot add this device", message(err)), "Refused");
    }
  },

  async signIn() {
    try {
      const { ceremony, options } = await api("POST", "/v1/app/signin/options", {});
      const credential = await passkey.get(options);
      const data = await api("POST", "/v1/app/signin", { ceremony, credential });
      app.signedIn(data);
      render();
    } catch (err) {
      app.signedOut(message(err));
    }
  },

  // An act that opens a door: a fresh passkey assertion whose challenge commits to it.
  async act(act) {
    const { ceremony, options } = await api("POST", "/v1/app/acts/options", { act });
    const credential = await passkey.get(options);
    return api("POST", "/v1/app/acts", { act, ceremony, credential });
  },

  async decide(session, allow) {
    try {
      await app.act({ kind: allow ? "approve" : "deny", target: session });
      app.say(allow ? "The door is opening." : "The visitor was turned away.");
    } catch (err) {
      app.say(message(err));
    }
    render();
  },

  async unlock(door) {
    try {
      await app.act({ kind: "unlock", target: door });
      app.say(`The ${door} door is unlocked.`);
    } catch (err) {
      app.say(message(err));
    }
    render();
  },

  async lock(door) {
    try {
      await api("POST", `/v1/app/doors/${encodeURIComponent(door)}/lock`, {});
      app.say(`The ${door} door is locked.`);
    } catch (err) {
      app.say(message(err));
    }
    render();
  },

  async rename(device, name) {
    try {
      await api("POST", `/v1/app/devices/${encodeURIComponent(device)}/rename`, { name });
      app.say("Renamed.");
    } catch (err) {
      app.say(message(err));
    }
    render();
  },

  async allowOpen(device, mayOpen) {
    try {
      await api("POST", `/v1/app/devices/${encodeURIComponent(device.device)}/permission`,
        { may_open: mayOpen });
      app.say(mayOpen ? `${device.name} may open doors.` : `${device.name} may no longer open doors.`);
    } catch (err) {
      app.say(message(err));
    }
    render();
  },

  // -- Web Push on this device (docs/owner-app.md, "Notifications") ---------------------------
  async pushOn(push, kinds) {
    try {
      if (!("PushManager" in window) || !navigator.serviceWorker) {
        throw new Error("This browser cannot receive notifications.");
      }
      if (await Notification.requestPermission() !== "granted") {
        throw new Error("Notifications are blocked for this app: allow them in the browser's settings.");
      }
      const registration = await navigator.serviceWorker.ready;
      // A browser that cannot reach its push service may never answer: say so, not spin.
      const subscription = await Promise.race([
        registration.pushManager.subscribe({
          userVisibleOnly: true, applicationServerKey: fromB64u(push.vapid_public_key),
        }),
        new Promise((_, reject) => setTimeout(
          () => reject(new Error("The browser's push service did not answer: try again later.")), 30000)),
      ]);
      await api("POST", "/v1/app/push/subscribe", { subscription: subscription.toJSON(), kinds });
      app.say("Notifications are on for this device.");
    } catch (err) {
      app.say(message(err));
    }
    render();
  },

  async pushKinds(kinds) {
    try {
      await api("POST", "/v1/app/push/preferences", { kinds });
      app.say("Saved.");
    } catch (err) {
      app.say(message(err));
    }
    render();
  },

  async pushOff() {
    try {
      const registration = await navigator.serviceWorker?.ready;
      const subscription = registration && await registration.pushManager.getSubscription();
      if (subscription) await subscription.unsubscribe();
      await api("POST", "/v1/app/push/unsubscribe", {});
      app.say("Notifications are off for this device.");
    } catch (err) {
      app.say(message(err));
    }
    render();
  },

  async revoke(device) {
    if (!confirm(`Revoke ${device.name}? It is signed out at once.`)) return;
    try {
      await api("POST", `/v1/app/devices/${encodeURIComponent(device.device)}/revoke`, {});
      app.say(`${device.name} was revoked.`);
    } catch (err) {
      app.say(message(err));
    }
    render();
  },
};

function fromB64u(text) {
  const raw = atob(text.replace(/-/g, "+").replace(/_/g, "/"));
  return Uint8Array.from(raw, (c) => c.charCodeAt(0));
}

function message(err) {
  if (err instanceof ApiError) return err.message;
  if (err && err.name === "NotAllowedError") return "The passkey request was cancelled.";
  return String(err && err.message ? err.message : err);
}

function enrollToken() {
  const m = /^#enroll=([A-Za-z0-9_-]+)$/.exec(location.hash);
  return m ? m[1] : null;
}

function currentRoute() {
  const raw = location.hash.replace(/^#/, "") || "now";
  const [path, query] = raw.split("?");
  const [name, arg] = path.split("/");
  return { name, arg, query: new URLSearchParams(query || "") };
}

let renders = 0;
let pending = null;

// A burst of notices (the backlog replayed on reconnect, a busy door) makes one render, not
// one request to the gateway per notice.
function soon() {
  if (pending) return;
  pending = setTimeout(() => { pending = null; render(); }, 100);
}

async function render() {
  if (enrollToken()) return startEnroll();
  if (!app.me) return;
  // Renders overlap (a notice arrives while the owner changes screen): only the latest one
  // may show its screen, or a slow one would put back the screen the owner just left.
  const mine = ++renders;
  const current = () => mine === renders;
  const route = currentRoute();
  for (const a of nav.querySelectorAll("a")) {
    if (a.getAttribute("href") === `#${route.name}`) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  try {
    if (route.name === "approve" && route.arg) {
      // What this device may do is read again: the owner may have allowed it, or not.
      const [visit, data, me] = await Promise.all([
        api("GET", `/v1/app/sessions/${encodeURIComponent(route.arg)}`), api("GET", "/v1/app/now"),
        api("GET", "/v1/app/me")]);
      if (!current()) return;
      app.me = { ...app.me, ...me };
      const choice = route.query.get("choice");
      if (current()) {
        app.show(screens.approve(app, visit, data, choice), "Visitor");
        const chosen = choice && document.getElementById(choice);
        if (chosen) chosen.focus();
      }
    } else if (route.name === "live") {
      const data = await api("GET", "/v1/app/now");
      const name = route.arg ? decodeURIComponent(route.arg) : "";
      const chosen = data.cameras.find((c) => c.name === name);
      if (current()) app.show(screens.live(app, chosen || data.camera, chosen ? name : ""), "Live view");
    } else if (route.name === "history") {
      const filters = Object.fromEntries(route.query);
      const data = await api("GET", `/v1/app/history?${route.query}`);
      if (current()) app.show(screens.history(app, data, filters), "History");
    } else if (route.name === "visitors") {
      const data = await api("GET", "/v1/app/invitations");
      if (current()) app.show(visitors.screen(app, data), "Visitors");
    } else if (route.name === "devices") {
      const [data, push] = await Promise.all([api("GET", "/v1/app/devices"), api("GET", "/v1/app/push")]);
      if (current()) app.show(screens.devices(app, data.devices, push), "Devices");
    } else {
      const data = await api("GET", "/v1/app/now");
      if (current()) app.show(screens.now(app, data), "Now");
    }
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) app.signedOut("Your session ended: sign in again.");
    else app.say(message(err));
  }
}

async function startEnroll() {
  nav.hidden = true;
  try {
    const info = await api("POST", "/v1/app/enroll/options", { token: enrollToken() });
    app.show(screens.enroll(app, info), "Add this device");
  } catch (err) {
    app.show(screens.refused("Cannot add this device", message(err)), "Refused");
  }
}

async function boot() {
  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.register("/app/sw.js", { scope: "/app/" }).catch(() => {});
  }
  window.addEventListener("hashchange", render);
  // The skip link moves the focus to the content; followed as a link it would change the
  // route (the hash) and leave the screen.
  document.querySelector("a.skip").addEventListener("click", (event) => {
    event.preventDefault();
    main.focus();
  });
  if (enrollToken()) return startEnroll();
  if (!passkey.supported()) {
    app.show(screens.refused("Passkeys needed", "This browser cannot use passkeys."));
    return;
  }
  try {
    app.signedIn(await api("GET", "/v1/app/me"));
    await render();
  } catch (err) {
    app.signedOut(err instanceof ApiError && err.status === 401 ? "" : message(err));
  }
  document.documentElement.dataset.ready = "true";
}

boot();
