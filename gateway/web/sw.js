// The owner app's service worker: keeps the shell so the app starts without the network.
// The API (/v1/...) is never cached: what the doors are doing is asked fresh every time.
const VERSION = "__SHELL_VERSION__";
const SHELL = [
  "/app/", "/app/app.js", "/app/api.js", "/app/passkey.js", "/app/screens.js",
  "/app/chart.js", "/app/visitors.js", "/app/schedule.js", "/app/app.css", "/app/manifest.webmanifest", "/app/icon.svg",
];

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(VERSION).then((cache) => cache.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches.keys()
      .then((keys) => Promise.all(keys.filter((k) => k !== VERSION).map((k) => caches.delete(k))))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== "GET" || url.origin !== self.location.origin) return;
  if (!url.pathname.startsWith("/app/")) return;
  const key = event.request.mode === "navigate" ? "/app/" : url.pathname;
  // The shell: the network when it answers (so an update shows at once), the cache when not.
  event.respondWith(
    fetch(event.request).then((response) => {
      if (response.ok) {
        const copy = response.clone();
        caches.open(VERSION).then((cache) => cache.put(key, copy));
      }
      return response;
    }).catch(() => caches.match(key).then((hit) => hit || Response.error())),
  );
});

// A push from the gateway (docs/owner-app.md, "Notifications"): padded JSON in the owner's
// words and the app's route to open. An approval offers Approve and Deny; each only opens the
// approval screen with that choice preselected: a service worker cannot make a passkey
// assertion, so nothing is ever approved from here.
self.addEventListener("push", (event) => {
  let message = {};
  try {
    message = event.data ? event.data.json() : {};
  } catch (err) {
    message = {};
  }
  const options = {
    body: message.body || "Something happened at your door.",
    tag: message.tag || message.kind || "threshold",
    icon: "/app/icon.svg",
    data: { route: message.route || "now", kind: message.kind || "" },
  };
  if (message.at_ms) options.timestamp = message.at_ms;
  if (message.kind === "approval_needed") {
    options.actions = [{ action: "approve", title: "Approve" }, { action: "deny", title: "Deny" }];
  }
  if (message.kind === "approval_needed" || message.kind === "emergency_entry") {
    options.requireInteraction = true;
  }
  event.waitUntil(self.registration.showNotification(message.title || "Threshold", options));
});

// Where a click on a notification (or on one of its actions) takes the owner.
function clickTarget(data, action) {
  const route = (data && (data.route || data.screen)) || "";
  const safe = /^[a-z]+(\/[A-Za-z0-9_-]+)?$/.test(route) ? route : "now";
  const choice = safe.startsWith("approve/") && (action === "approve" || action === "deny")
    ? `?choice=${action}` : "";
  return `/app/#${safe}${choice}`;
}
self.clickTarget = clickTarget;

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const target = clickTarget(event.notification.data, event.action);
  event.waitUntil(self.clients.matchAll({ type: "window" }).then((list) => {
    for (const client of list) {
      if ("navigate" in client && "focus" in client) {
        return client.focus().then((focused) => focused.navigate(target));
      }
    }
    return self.clients.openWindow(target);
  }));
});
