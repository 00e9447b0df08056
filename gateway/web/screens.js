// The app's screens. Everything is built with DOM calls: no HTML string ever holds data.
import { api } from "./api.js";
import { visitsChart } from "./chart.js";

export function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (v === true) node.setAttribute(k, "");
    else node.setAttribute(k, String(v));
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const time = (ms) => (ms ? new Date(ms).toLocaleString() : "");
const iso = (text) => (text ? new Date(text).toLocaleTimeString() : "");

function facts(pairs) {
  return h("dl", {}, pairs.filter(([, v]) => v !== undefined && v !== null && v !== "")
    .map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}

// -- sign in and enroll --------------------------------------------------------------------------

export function signIn(app, message) {
  return [
    h("h1", {}, "Sign in"),
    message ? h("p", { role: "alert", class: "warn" }, message) : null,
    h("p", {}, "Use the passkey on this device. The gateway never sees your fingerprint or PIN."),
    h("button", { id: "signin", onclick: () => app.signIn() }, "Sign in with a passkey"),
  ];
}

export function enroll(app, info) {
  return [
    h("h1", {}, "Add this device"),
    h("p", {}, `The owner invited this device as “${info.name}” (${info.role}). ` +
      "Creating a passkey keeps the key on this device; the link then stops working."),
    h("button", { id: "enroll", onclick: () => app.enroll() }, "Create a passkey"),
  ];
}

export function refused(title, message) {
  return [h("h1", {}, title), h("p", { role: "alert", class: "bad", id: "refusal" }, message)];
}

// -- now -----------------------------------------------------------------------------------------

function doorCard(app, door) {
  const opens = app.me.may_open === true;
  return h("section", { class: "card door", "aria-labelledby": `door-${door.door}` },
    h("h2", { id: `door-${door.door}` }, `${door.door[0].toUpperCase()}${door.door.slice(1)} door`),
    facts([
      ["Lock", h("span", { class: `state ${door.lock}`, "data-lock": door.lock }, door.lock)],
      ["Door", door.door_state],
      ["Battery", door.battery_percent != null
        ? `${door.battery_percent}%${door.battery_critical ? " (critical)" : ""}` : "unknown"],
      ["Visit", door.session ? h("a", { href: `#approve/${door.session}` }, door.session) : "none"],
    ]),
    h("div", { class: "actions" },
      opens ? h("button", { class: "secondary", onclick: () => app.unlock(door.door) }, "Unlock…") : null,
      h("button", { onclick: () => app.lock(door.door) }, "Lock")),
  );
}

function cameraCard(data) {
  const cam = data.camera;
  const camText = !cam.configured ? "No camera configured" : cam.live ? "Live" : "Down";
  if (data.cameras.length <= 1) {
    return h("section", { class: "card", "aria-labelledby": "camera" }, h("h2", { id: "camera" }, "Camera"),
      h("p", { class: cam.live ? "ok" : "bad", id: "camera-state" }, camText),
      cam.configured ? h("a", { href: "#live" }, "Watch live") : null);
  }
  return h("section", { class: "card", "aria-labelledby": "camera" }, h("h2", { id: "camera" }, "Cameras"),
    h("ul", { id: "cameras" }, data.cameras.map((c) => h("li", { "data-camera": c.name },
      `${c.name}${c.doors.length ? ` (${c.doors.join(", ")})` : ""}: `,
      h("span", { class: c.live ? "ok" : "bad" }, c.live ? "live" : "down"), " ",
      h("a", { href: `#live/${encodeURIComponent(c.name)}`, "aria-label": `Watch ${c.name} live` }, "Watch live")))));
}

export function now(app, data) {
  const waiting = data.awaiting.map((s) => h("li", {},
    h("a", { href: `#approve/${s.session}` }, `${s.subject || "A visitor"} (${s.purpose}) at the ${s.door} door`)));
  return [
    h("h1", {}, "Now"),
    data.alarms.length ? h("section", { class: "card", role: "alert" }, h("h2", { class: "bad" }, "Alarm"),
      h("ul", {}, data.alarms.map((s) => h("li", {}, `${s.door} door: ${s.state} (${s.reason || "relock failed"})`)))) : null,
    waiting.length ? h("section", { class: "card", "aria-labelledby": "waiting" },
      h("h2", { id: "waiting" }, "Waiting for you"), h("ul", {}, waiting)) : null,
    h("div", { class: "grid" }, data.doors.map((d) => doorCard(app, d)),
      cameraCard(data)),
    h("section", { class: "card", "aria-labelledby": "open" }, h("h2", { id: "open" }, "Open visits"),
      data.sessions.length ? h("ul", {}, data.sessions.map((s) => h("li", {},
        `${s.subject} (${s.purpose}), ${s.door} door: ${s.state.replace("_", " ")}`))) : h("p", {}, "None")),
    h("section", { class: "card", "aria-labelledby": "feed-title" }, h("h2", { id: "feed-title" }, "Notifications"),
      app.notificationButton(),
      h("ol", { class: "feed", id: "feed", "aria-live": "polite" },
        app.notices.slice(0, 10).map((n) => h("li", { class: n.alert ? "alert" : "" },
          `${new Date(n.at_ms).toLocaleTimeString()} — ${n.text}`)))),
  ];
}

// -- approve -------------------------------------------------------------------------------------

export function approve(app, s, now, choice) {
  // The camera watching this door (several cameras: the first that names it, or watches all).
  const cam = now.cameras.find((c) => !c.doors.length || c.doors.includes(s.door));
  const cameraLive = cam ? cam.live : now.camera.live;
  const which = cam ? `camera=${encodeURIComponent(cam.name)}&` : "";
  const waiting = s.state === "awaiting_approval";
  const opens = app.me.may_open === true;
  return [
    h("h1", {}, waiting ? "A visitor is waiting" : "Visit"),
    h("section", { class: "card" },
      facts([["Name", s.subject], ["Purpose", s.purpose], ["Issuer", s.issuer || "unknown"],
        ["Door", s.door], ["Arrived", iso(s.created_at)],
        ["State", h("span", { id: "visit-state" }, s.state.replace("_", " "))]]),
      cameraLive ? [
        h("h2", {}, "At the door"),
        h("img", { class: "view", src: `/v1/app/camera/snapshot?${which}t=${Date.now()}`, alt: "Snapshot of the visitor at the door" }),
        h("p", {}, h("a", { href: cam ? `#live/${encodeURIComponent(cam.name)}` : "#live" }, "Watch live")),
      ] : h("p", { class: "bad" }, "The camera is down: no picture of the visitor."),
      // From a notification's Approve or Deny: that choice is preselected (it has the focus,
      // and says so), and still needs the owner's press and passkey, never done by itself.
      waiting && opens && (choice === "approve" || choice === "deny") ? h("p", { id: "choice-note", class: "warn" },
        choice === "approve" ? "You chose to let them in: confirm with your passkey." :
          "You chose to turn them away: confirm with your passkey.") : null,
      waiting && opens ? h("div", { class: "actions" },
        h("button", { id: "approve", "data-chosen": choice === "approve" ? "true" : null,
          onclick: () => app.decide(s.session, true) }, "Let them in"),
        h("button", { id: "deny", class: "danger", "data-chosen": choice === "deny" ? "true" : null,
          onclick: () => app.decide(s.session, false) }, "Turn away")) : null,
      waiting && !opens ? h("p", { class: "warn", id: "member-note" },
        "Only an owner device, or one the owner allowed, can let a visitor in.") : null),
  ];
}

// -- live ----------------------------------------------------------------------------------------

export function live(app, camera, name) {
  if (!camera.configured || !camera.live) {
    return [h("h1", {}, "Live view"), h("p", { class: "bad", role: "alert", id: "camera-down" },
      camera.configured ? "The camera is down." : "No camera is configured.")];
  }
  const src = name ? `/v1/app/camera/live?camera=${encodeURIComponent(name)}` : "/v1/app/camera/live";
  const img = h("img", { class: "view", id: "live-view", src, alt: `The ${name || "door"} camera, live` });
  img.addEventListener("error", () => img.replaceWith(h("p", { class: "bad", role: "alert", id: "camera-down" },
    "The camera is down or busy.")));
  return [h("h1", {}, "Live view"), img];
}

// -- history -------------------------------------------------------------------------------------

function clipView(clip) {
  if (clip.status === "missing") return h("p", { class: "warn" }, `No clip (${clip.reason || "camera down"})`);
  const words = {
    verified: "Verified against the audit log",
    hash_mismatch: "Does NOT match the audit log",
    log_unverified: "Unverified: the audit log does not verify here",
    file_gone: "The file is gone",
  }[clip.status];
  return h("figure", { class: "clip" },
    clip.status !== "file_gone" ? h("video", { controls: true, preload: "metadata", src: `/v1/app/media/${clip.entry}`,
      "aria-label": `Clip of entry ${clip.entry}` }) : null,
    h("figcaption", {},
      h("span", { class: `badge ${clip.verified ? "ok" : "bad"}`, "data-clip-status": clip.status }, words),
      " ", h("span", { class: "hash" }, `SHA-256 ${clip.sha256 || "?"} (entry ${clip.entry})`)));
}

function visitCard(v) {
  return h("article", { class: "card visit", "data-session": v.session, "aria-labelledby": `v-${v.session}` },
    h("h2", { id: `v-${v.session}` }, `${v.subject || "Unknown"} — ${v.purpose}`),
    h("p", {}, h("span", { class: `badge ${v.verified ? "ok" : "bad"}`, "data-verified": String(v.verified) },
      v.verified ? "Log verified" : "Not verified")),
    facts([["Issuer", v.issuer], ["Door", v.door], ["From", time(v.started_ms)], ["To", time(v.ended_ms)],
      ["Outcome", v.outcome], ["Let in by", v.approved_by],
      ["Refused", v.refusals.map((r) => r.code).join(", ")], ["Alarms", v.alarms.join(", ")]]),
    v.snapshots.length ? h("div", { class: "thumbs" }, v.snapshots.map((s) =>
      h("img", { src: `/v1/app/media/${s.entry}`, loading: "lazy", alt: `Snapshot at ${s.moment}` }))) : null,
    v.clips.map(clipView));
}

export function history(app, data, filters) {
  const select = (name, label, values) => h("label", {}, label,
    h("select", { name }, h("option", { value: "" }, "All"),
      values.map((v) => h("option", { value: v, selected: filters[name] === v }, v))));
  const form = h("form", { class: "filters card", role: "search", "aria-label": "Filter visits" },
    h("label", {}, "Person", h("input", { name: "person", value: filters.person || "", autocomplete: "off" })),
    select("purpose", "Purpose", data.purposes), select("door", "Door", data.doors),
    h("button", { type: "submit" }, "Filter"));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const q = new URLSearchParams(new FormData(form));
    app.go(`history?${q}`);
  });
  const logOk = data.log.ok;
  return [
    h("h1", {}, "History"),
    h("p", { class: logOk ? "ok" : "bad", id: "log-state", role: logOk ? null : "alert" },
      logOk ? `The audit log verifies (${data.log.entries} entries).`
        : `The audit log does not verify from entry ${data.log.first_bad_index}: ${data.log.problem}`),
    form,
    h("section", { class: "card", "aria-labelledby": "chart-title" },
      h("h2", { id: "chart-title" }, "Visits per day"), visitsChart(data.per_day)),
    data.visits.length ? data.visits.map(visitCard) : h("p", {}, "No visits."),
  ];
}

// -- devices -------------------------------------------------------------------------------------

export function devices(app, list, push) {
  const owner = app.me.role === "owner";
  return [
    h("h1", {}, "Devices"),
    pushSettings(app, push),
    h("ul", { class: "feed" }, list.map((d) => {
      const self = d.device === app.me.device;
      const input = h("input", { name: "name", value: d.name, "aria-label": `New name for ${d.name}` });
      return h("li", { class: "card", "data-device": d.device },
        h("h2", {}, d.name, self ? " (this device)" : ""),
        facts([["Role", d.role], ["Opens doors", d.may_open ? "yes" : "no"], ["Added", time(d.created_ms)],
          ["Last used", time(d.last_used_ms) || "never"],
          ["Status", d.revoked_ms ? `revoked ${time(d.revoked_ms)}` : "active"]]),
        !d.revoked_ms && (owner || self) ? h("form", { class: "actions", onsubmit: (e) => {
          e.preventDefault(); app.rename(d.device, input.value);
        } }, input, h("button", { type: "submit", class: "secondary" }, "Rename")) : null,
        !d.revoked_ms && owner ? h("div", { class: "actions" },
          d.role === "member" ? h("button", { class: "secondary", "aria-pressed": d.may_open ? "true" : "false",
            onclick: () => app.allowOpen(d, !d.may_open) }, `${d.name} may open doors`) : null,
          h("button", { class: "danger", onclick: () => app.revoke(d) }, `Revoke ${d.name}`)) : null);
    })),
  ];
}

export async function load(path) {
  return api("GET", path);
}

// -- notifications (Web Push) on this device -----------------------------------------------------

function pushSettings(app, push) {
  if (!push || !push.available) return null;
  const boxes = push.choices.map((c) => h("input", {
    type: "checkbox", name: "kind", value: c.kind, id: `push-${c.kind}`,
    checked: push.subscribed ? push.kinds.includes(c.kind) : true,
  }));
  const chosen = () => boxes.filter((b) => b.checked).map((b) => b.value);
  return h("section", { class: "card", "aria-labelledby": "push-title", id: "push-settings" },
    h("h2", { id: "push-title" }, "Notifications on this device"),
    h("p", {}, push.subscribed
      ? "This device is told at once, even with the app closed, about:"
      : "Off. Turned on, this device is told at once, even with the app closed. The push service of its browser learns only that a notification came, and when."),
    h("fieldset", {}, h("legend", {}, "Tell me when"),
      push.choices.map((c, i) => h("div", {}, boxes[i], h("label", { for: `push-${c.kind}` }, c.label)))),
    h("div", { class: "actions" },
      push.subscribed ? [
        h("button", { class: "secondary", id: "push-save", onclick: () => app.pushKinds(chosen()) }, "Save"),
        h("button", { class: "danger", id: "push-off", onclick: () => app.pushOff() }, "Turn off notifications"),
      ] : h("button", { id: "push-on", onclick: () => app.pushOn(push, chosen()) }, "Turn on notifications")));
}
