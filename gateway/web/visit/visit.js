// The visitor's page: this phone's key (a non-extractable Ed25519 key made by WebCrypto and
// kept in IndexedDB), the tickets bound to it, and the Open the door button.
// docs/visitors.md. Nothing is fetched from anywhere but this gateway.

const main = document.getElementById("main");
const sayBox = document.getElementById("say");
const DB = "threshold-visit";
const RENEW_BEFORE_MS = 2 * 24 * 3600 * 1000;

// -- small helpers ---------------------------------------------------------------------------

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (v !== false && v != null) el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat(3)) if (c != null && c !== false) el.append(c);
  return el;
}

function show(title, ...nodes) {
  main.replaceChildren(h("h1", {}, title), ...nodes.flat(3).filter(Boolean));
  document.title = `${title} — Threshold`;
  main.focus({ preventScroll: true });
}

function say(text) { sayBox.textContent = text; }

const b64u = {
  encode(bytes) {
    let bin = "";
    for (const b of new Uint8Array(bytes)) bin += String.fromCharCode(b);
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  },
  decode(text) {
    const pad = "=".repeat((4 - (text.length % 4)) % 4);
    const bin = atob(text.replace(/-/g, "+").replace(/_/g, "/") + pad);
    return Uint8Array.from(bin, (c) => c.charCodeAt(0));
  },
};

class Refused extends Error {
  constructor(status, code, detail) { super(detail || code); this.status = status; this.code = code; }
}

async function call(method, path, body) {
  let response;
  try {
    response = await fetch(path, {
      method, cache: "no-store", credentials: "omit",
      headers: body ? { "Content-Type": "application/json" } : {},
      body: body ? JSON.stringify(body) : undefined,
    });
  } catch (err) {
    throw new Refused(0, "offline", "");
  }
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Refused(response.status, data.code || "error", data.detail);
  return { status: response.status, data };
}

// -- storage: IndexedDB keeps the key pair (as CryptoKey objects) and the state ---------------

function db() {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(DB, 1);
    req.onupgradeneeded = () => req.result.createObjectStore("kv");
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

async function kv(mode, fn) {
  const conn = await db();
  return new Promise((resolve, reject) => {
    const tx = conn.transaction("kv", mode);
    const req = fn(tx.objectStore("kv"));
    tx.oncomplete = () => resolve(req ? req.result : undefined);
    tx.onerror = () => reject(tx.error);
  });
}

const load = (key) => kv("readonly", (s) => s.get(key));
const save = (key, value) => kv("readwrite", (s) => s.put(value, key));

// -- the proof: PAE("threshold-proof-v1", gateway_id, nonce, ticket_id, action) --------------

function pae(pieces) {
  const le64 = (n) => { const b = new Uint8Array(8); new DataView(b.buffer).setBigUint64(0, BigInt(n), true); return b; };
  const parts = [le64(pieces.length)];
  for (const p of pieces) { parts.push(le64(p.length), p); }
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}

async function proof(keys, gatewayId, nonce, id, action) {
  const text = (s) => new TextEncoder().encode(s);
  const message = pae([text("threshold-proof-v1"), text(gatewayId), nonce, text(id), text(action)]);
  return b64u.encode(await crypto.subtle.sign("Ed25519", keys.privateKey, message));
}

// -- words: every refusal in plain language, with what to do ----------------------------------

function when(iso, zone) {
  return new Intl.DateTimeFormat("en-GB", {
    weekday: "long", day: "numeric", month: "long", hour: "2-digit", minute: "2-digit", timeZone: zone,
  }).format(new Date(iso));
}

function nextWindowWords(view) {
  const w = view.next_window;
  if (!w) return "You have no time to come in the next week.";
  return `Your next time: ${when(w.start, view.zone)} to ${when(w.end, view.zone)}.`;
}

function words(err, view) {
  switch (err.code) {
    case "outside_schedule":
      return ["It is outside your times, so the door stays locked.", nextWindowWords(view)];
    case "door_busy":
      return ["Someone is using the door right now.", "Wait a minute and press the button again."];
    case "camera_unavailable":
      return ["The door's camera is not working, so the door cannot open for you.",
        "The owner has been told. Please contact them."];
    case "revoked":
    case "invitation_revoked":
      return ["Your key was withdrawn by the owner.", "If you think this is a mistake, contact them."];
    case "expired": case "invitation_ended":
      return ["Your key has expired.", "Ask the owner for a new invitation."];
    case "not_yet_valid":
      return ["Your key is not valid yet.", nextWindowWords(view)];
    case "uses_exhausted":
      return [view && view.uses_total
        ? `You have opened the door as many times as the owner allowed in all (${times(view.uses_total)}).`
        : view && view.uses_per_window
          ? `You have opened the door as many times as the owner allowed for this visit (${times(view.uses_per_window)}).`
          : "You have used this key as many times as the owner allowed this week.",
        view && view.uses_per_window && !view.uses_total
          ? "You can open it again on your next visit; contact the owner if you need to come in now."
          : "Contact the owner if you need to come in again."];
    case "lock_unavailable":
      return ["The lock did not answer.", "Try again in a moment; if it goes on, contact the owner."];
    case "invitation_used":
      return ["This invitation was already accepted on another phone.",
        "If that was not you, tell the person who invited you: they can withdraw it and send you a new one."];
    case "invitation_unknown":
      return ["This invitation is not known to this home.", "Check the link, or ask for a new one."];
    case "offline":
      return ["The door cannot be reached.", "Check that this phone is on the home's Wi-Fi and try again."];
    default:
      return ["The door did not open.", `Try again; if it goes on, contact the owner (${err.code}).`];
  }
}

function times(n) {
  return n === 1 ? "once" : `${n} times`;
}

function refusal(err, view) {
  const [what, todo] = words(err, view);
  return h("div", { class: "refusal", role: "alert", "data-code": err.code },
    h("p", {}, h("strong", {}, what)), h("p", {}, todo));
}

// -- screens ---------------------------------------------------------------------------------

const DAY = { mon: "Monday", tue: "Tuesday", wed: "Wednesday", thu: "Thursday", fri: "Friday", sat: "Saturday", sun: "Sunday" };

function schedule(view) {
  return h("ul", { "aria-label": "Your times" }, view.schedule.map((w) =>
    h("li", {}, `${w.days.map((d) => DAY[d]).join(", ")}: ${w.start} to ${w.end}`)));
}

function kindWords(kind) { return kind.replace("_", " "); }

async function offer(token) {
  let view;
  try {
    view = (await call("POST", "/v1/visit/preview", { token })).data;
  } catch (err) {
    return show("This invitation cannot be used", refusal(err, null));
  }
  show(`${view.invited_by} invites you`,
    h("p", {}, `Hello ${view.name}. You are invited as ${kindWords(view.kind)} until ${when(view.ends, view.zone)}.`),
    h("h2", {}, `Your times (${view.zone})`), schedule(view),
    h("p", { class: "note" }, "Accepting makes a key on this phone. It cannot be copied off it. ",
      "Nothing to install."),
    h("button", { class: "big", onclick: () => accept(token) }, "Accept and make my key"));
}

async function accept(token) {
  say("Making your key…");
  try {
    const keys = await crypto.subtle.generateKey({ name: "Ed25519" }, false, ["sign", "verify"]);
    const publicKey = b64u.encode(await crypto.subtle.exportKey("raw", keys.publicKey));
    const { data } = await call("POST", "/v1/visit/claim", { token, public_key: publicKey });
    await save("keys", keys);
    await save("state", { view: data, tickets: data.tickets, receipts: [] });
    history.replaceState(null, "", "/visit/");
    say("Your key is ready.");
    return home();
  } catch (err) {
    say("");
    return show("This invitation cannot be used", refusal(err, null));
  }
}

async function renew(state, keys, mode) {
  const nonceText = (await call("POST", "/v1/visit/challenge")).data.nonce;
  const signed = await proof(keys, state.view.gateway_id, b64u.decode(nonceText), state.view.invitation, mode);
  const { data } = await call("POST", "/v1/visit/renew",
    { invitation: state.view.invitation, nonce: nonceText, proof: signed, mode });
  state.view = data;
  if (data.tickets) state.tickets = data.tickets;
  await save("state", state);
  return state;
}

// The weekly renewal, without the visitor doing anything: whenever the page is opened or
// the door is used, a ticket with less than two days left is replaced.
async function keepFresh(state, keys) {
  const soonest = Math.min(...state.tickets.map((t) => Date.parse(t.exp)));
  if (soonest - Date.now() > RENEW_BEFORE_MS) return state;
  return renew(state, keys, "renew");
}

async function home(notice) {
  const keys = await load("keys");
  let state = await load("state");
  if (!keys || !state) {
    return show("No key on this phone", h("p", {}, "Open the invitation link you were sent to make your key."));
  }
  try {
    state = await keepFresh(state, keys);
  } catch (err) {
    if (err.code === "invitation_revoked" || err.code === "invitation_ended") {
      state.view.revoked = err.code === "invitation_revoked";
      await save("state", state);
      return show("Your key no longer works", refusal(err, state.view), receipts(state));
    }
  }
  const view = state.view;
  const doors = state.tickets.map((t) => t.door);
  const open = (door) => h("button", { class: "big", onclick: () => openDoor(door) },
    doors.length > 1 ? `Open the ${door} door` : "Open the door");
  show(`Hello ${view.name}`,
    notice || null,
    h("p", {}, `${view.invited_by} invited you as ${kindWords(view.kind)}.`),
    h("p", { id: "next" }, nextWindowWords(view)),
    doors.map(open),
    h("h2", {}, `Your times (${view.zone})`), schedule(view),
    h("p", { class: "small" }, `Your key works until ${when(view.ends, view.zone)}; it renews by itself.`),
    view.uses_total ? h("p", { class: "small", id: "uses" }, `You may open the door ${times(view.uses_total)} in all.`) : null,
    view.uses_per_window ? h("p", { class: "small", id: "uses" }, `You may open the door ${times(view.uses_per_window)} each visit.`) : null,
    receipts(state));
}

function receipts(state) {
  if (!state.receipts || !state.receipts.length) return null;
  return [h("h2", {}, "Your visits"), h("ul", { id: "receipts" }, state.receipts.slice(-10).reverse().map((r) =>
    h("li", {}, `${r.door}: in ${when(r.opened, state.view.zone)}`, r.left ? `, out ${when(r.left, state.view.zone)}` : "",
      ` (visit ${r.session})`)))];
}

async function openDoor(door) {
  const keys = await load("keys");
  let state = await load("state");
  say("Opening…");
  try {
    state = await keepFresh(state, keys);
    const ticket = state.tickets.find((t) => t.door === door);
    const nonceText = (await call("POST", "/v1/challenges")).data.nonce;
    const signed = await proof(keys, state.view.gateway_id, b64u.decode(nonceText), ticket.jti, "open");
    const { data } = await call("POST", "/v1/access", { ticket: ticket.ticket, door, nonce: nonceText, proof: signed });
    const receipt = { door, session: data.session, jti: ticket.jti, opened: new Date().toISOString() };
    state.receipts = [...(state.receipts || []), receipt];
    await save("state", state);
    say("The door is open.");
    show("The door is open",
      h("p", { class: "opened", role: "status" }, `Come in. The ${door} door locks again by itself after a minute, or when you press the button below.`),
      h("button", { class: "big", onclick: () => leave(receipt) }, "I have left"));
  } catch (err) {
    say("");
    if (err.code === "outside_schedule" || err.code === "revoked" || err.code === "not_yet_valid") {
      try { state = await renew(state, keys, "status"); } catch (e) { /* keep what we know */ }
    }
    await home(refusal(err, state.view));
  }
}

async function leave(receipt) {
  const keys = await load("keys");
  const state = await load("state");
  try {
    const nonceText = (await call("POST", "/v1/challenges")).data.nonce;
    const signed = await proof(keys, state.view.gateway_id, b64u.decode(nonceText), receipt.jti, "done");
    await call("POST", `/v1/access/${encodeURIComponent(receipt.session)}/done`, { nonce: nonceText, proof: signed });
    const kept = state.receipts.find((r) => r.session === receipt.session);
    if (kept) kept.left = new Date().toISOString();
    await save("state", state);
    say("Thank you. The door is locked.");
    await home();
  } catch (err) {
    say("");
    await home(refusal(err, state.view));
  }
}

async function boot() {
  if (!window.crypto || !crypto.subtle || !window.indexedDB) {
    return show("This browser cannot hold a key", h("p", {}, "Open the link in your phone's usual browser."));
  }
  const m = /^#invite=([A-Za-z0-9_-]+)$/.exec(location.hash);
  if (m) {
    const existing = await load("state");
    if (!existing) await offer(m[1]);
    else await home();
  } else {
    await home();
  }
  document.documentElement.dataset.ready = "true";
}

boot();
