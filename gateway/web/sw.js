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

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const target = event.notification.data && event.notification.data.screen;
  event.waitUntil(self.clients.matchAll({ type: "window" }).then((list) => {
    for (const client of list) {
      if ("focus" in client) return client.focus();
    }
    return self.clients.openWindow("/app/" + (target ? "#" + target : ""));
  }));
});
