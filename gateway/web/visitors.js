// The owner app's Visitors screen (docs/visitors.md): invite a cleaner, a dog walker or a
// guest (a fresh passkey assertion over exactly the terms), show the one-time link and its QR
// code, list the invitations and withdraw one.
import { api } from "./api.js";
import * as passkey from "./passkey.js";
import { h } from "./screens.js";
import { describe, occurrences } from "./schedule.js";

const DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const DAY_WORDS = { mon: "Mon", tue: "Tue", wed: "Wed", thu: "Thu", fri: "Fri", sat: "Sat", sun: "Sun" };
const KINDS = [["cleaner", "Cleaner"], ["dog_walker", "Dog walker"], ["guest", "Guest"]];

function when(iso, zone) {
  return new Intl.DateTimeFormat("en-GB", {
    weekday: "short", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit", timeZone: zone,
  }).format(new Date(iso));
}

// One weekly window of the editor: its days and its times, in the home's time zone.
function windowRow(index, initial) {
  const legend = h("legend", {}, `Window ${index + 1}`);
  const days = DAYS.map((d) => h("label", { class: "day" },
    h("input", { type: "checkbox", name: `w${index}-day`, value: d, checked: initial.days.includes(d) }),
    DAY_WORDS[d]));
  return h("fieldset", { class: "window", "data-window": index }, legend,
    h("div", { class: "days", role: "group", "aria-label": `Days of window ${index + 1}` }, days),
    h("label", {}, "From", h("input", { type: "time", name: `w${index}-start`, value: initial.start, required: true })),
    h("label", {}, "To", h("input", { type: "time", name: `w${index}-end`, value: initial.end, required: true })));
}

function readTerms(form, doors) {
  const windows = [...form.querySelectorAll("fieldset.window")].map((fs) => ({
    days: [...fs.querySelectorAll("input[type=checkbox]:checked")].map((c) => c.value),
    start: fs.querySelector("input[name$=-start]").value,
    end: fs.querySelector("input[name$=-end]").value,
  })).filter((w) => w.days.length);
  const picked = doors.filter((d) => form.querySelector(`input[name=door][value="${d}"]`).checked);
  const total = form.querySelector("[name=uses_total]");
  const perVisit = form.querySelector("[name=uses_per_window]");
  return {
    name: form.querySelector("[name=name]").value,
    kind: form.querySelector("[name=kind]").value,
    doors: picked,
    schedule: windows,
    days: Number(form.querySelector("[name=days]").value),
    uses: Number(form.querySelector("[name=uses]").value),
    camera_required: form.querySelector("[name=camera]").checked,
    // Empty: no limit in all (the per-ticket count alone); else a count for the whole
    // arrangement, across renewals and doors, kept by the gateway's store.
    ...(total.value ? { uses_total: Number(total.value) } : {}),
    // The same per visit (each window of the schedule); the gateway takes one of the two.
    ...(perVisit.value ? { uses_per_window: Number(perVisit.value) } : {}),
  };
}

function qrNode(svgText) {
  // The gateway's SVG (segno), parsed as SVG: no HTML string is ever assigned.
  const doc = new DOMParser().parseFromString(svgText, "image/svg+xml");
  const svg = document.importNode(doc.documentElement, true);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", "QR code of the invitation link");
  return svg;
}

function madeLink(app, made, terms) {
  const copy = h("button", { class: "secondary", onclick: async () => {
    try { await navigator.clipboard.writeText(made.link); app.say("Link copied."); } catch { app.say("Select the link to copy it."); }
  } }, "Copy the link");
  return h("section", { class: "card", id: "invitation-made", "aria-labelledby": "made-h" },
    h("h2", { id: "made-h" }, `Send this to ${terms.name}`),
    h("p", {}, "By any messenger. It works once: the first phone that opens it gets the key. " +
      `Valid until ${when(made.link_expires, app.visitorsZone)}.`),
    h("p", { class: "hash", id: "invitation-link" }, made.link),
    h("div", { class: "qr" }, qrNode(made.qr_svg)),
    h("div", { class: "actions" }, copy));
}

export function screen(app, data) {
  const doors = app.me.doors || [];
  app.visitorsZone = data.zone;
  const windows = h("div", { id: "windows" }, windowRow(0, { days: ["mon", "thu"], start: "09:00", end: "12:00" }));
  const form = h("form", { id: "invite", "aria-labelledby": "invite-h" },
    h("label", {}, "Name", h("input", { name: "name", required: true, maxlength: 40, autocomplete: "off" })),
    h("label", {}, "Who", h("select", { name: "kind" }, KINDS.map(([v, t]) => h("option", { value: v }, t)))),
    h("fieldset", {}, h("legend", {}, "Doors"), doors.map((d) =>
      h("label", { class: "day" }, h("input", { type: "checkbox", name: "door", value: d, checked: doors.length === 1 }), d))),
    h("p", {}, `Times are in the home's time zone, ${data.zone}; they follow its clock through summer time changes.`),
    windows,
    h("button", { type: "button", class: "secondary", onclick: () => {
      const n = windows.querySelectorAll("fieldset.window").length;
      if (n < 14) windows.append(windowRow(n, { days: [], start: "09:00", end: "12:00" }));
      refresh();
    } }, "Add another time"),
    h("label", {}, "For how many days", h("input", { name: "days", type: "number", min: 1, max: 366, value: 90 })),
    h("label", {}, "Door openings per ticket (a ticket lasts up to a week)", h("input", { name: "uses", type: "number", min: 1, max: 1000, value: 10 })),
    h("label", {}, "Door openings per visit, in each of the times above (empty: no limit)", h("input", { name: "uses_per_window", type: "number", min: 1, max: 1000 })),
    h("label", {}, "Door openings in all, over the entire arrangement (empty: no limit)", h("input", { name: "uses_total", type: "number", min: 1, max: 1000 })),
    h("label", { class: "day" }, h("input", { type: "checkbox", name: "camera", checked: true }), "Only when the camera is working"),
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Invite with my passkey")));
  // The editor's preview: the next week's windows as the home's clock will have them.
  const preview = h("ul", { id: "schedule-preview", "aria-label": "The next seven days" });
  const refresh = () => {
    const terms = readTerms(form, doors);
    const now = Date.now();
    const spans = terms.schedule.every((w) => /^\d\d:\d\d$/.test(w.start) && /^\d\d:\d\d$/.test(w.end))
      ? occurrences(terms.schedule, data.zone, now, now + 7 * 86_400_000) : [];
    preview.replaceChildren(...(spans.length ? spans.map((s) => h("li", {}, describe(s, data.zone)))
      : [h("li", {}, "No time in the next seven days.")]));
  };
  form.addEventListener("input", refresh);
  form.addEventListener("change", refresh);
  windows.after(h("p", {}, "The next seven days:"), preview);
  refresh();
  const result = h("div", { id: "invite-result", "aria-live": "polite" });
  const list = h("section", { class: "card", "aria-labelledby": "list-h" }, ...invitationList(app, data.invitations));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const terms = readTerms(form, doors);
    try {
      const { ceremony, options } = await api("POST", "/v1/app/invitations/options", { terms });
      const credential = await passkey.get(options);
      const made = await api("POST", "/v1/app/invitations", { terms, ceremony, credential });
      result.replaceChildren(madeLink(app, made, terms));
      app.say(`Invitation for ${terms.name} made.`);
      const fresh = await api("GET", "/v1/app/invitations");
      list.replaceChildren(...invitationList(app, fresh.invitations));
      result.scrollIntoView();
    } catch (err) {
      result.replaceChildren(h("p", { role: "alert", class: "bad" }, err.message || String(err)));
    }
  });
  return [
    h("h1", {}, "Visitors"),
    h("section", { class: "card", "aria-labelledby": "invite-h" }, h("h2", { id: "invite-h" }, "Invite someone"), form),
    result,
    list,
    h("p", { class: "muted" }, "Withdrawing a key stops it at once on this gateway. For your other gateways, " +
      "send them a revocation list signed with your root key (threshold revocations)."),
  ];
}

function invitationList(app, invitations) {
  return [h("h2", { id: "list-h" }, "Invitations"),
    invitations.length ? h("ul", { class: "feed", id: "invitations" }, invitations.map((inv) => invitationItem(app, inv)))
      : h("p", {}, "Nobody is invited yet.")];
}

function invitationItem(app, inv) {
  const state = inv.revoked ? "withdrawn" : inv.claimed ? "key in use" : "link not opened yet";
  const next = inv.next_window ? `next: ${when(inv.next_window.start, inv.zone)}` : "";
  return h("li", { "data-invitation": inv.invitation },
    h("strong", {}, inv.name), ` (${inv.kind.replace("_", " ")}) · `, h("span", { class: "badge" }, state),
    next ? ` · ${next}` : "",
    inv.revoked ? null : h("div", { class: "actions" }, h("button", { class: "danger", onclick: () => revoke(app, inv) },
      `Withdraw ${inv.name}'s key`)));
}

async function revoke(app, inv) {
  if (!confirm(`Withdraw ${inv.name}'s key? It stops working at once.`)) return;
  try {
    await api("POST", `/v1/app/invitations/${encodeURIComponent(inv.invitation)}/revoke`, {});
    app.say(`${inv.name}'s key was withdrawn.`);
  } catch (err) {
    app.say(err.message || String(err));
  }
  app.go("visitors");
}
