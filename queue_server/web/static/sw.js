// The phone page's service worker: shows a Web Push message ("your turn is near", "go to
// counter 5") even when the page is closed, and a tap opens the ticket page again.
self.addEventListener("push", (event) => {
  let message = { title: "Rigi", body: "" };
  try {
    message = { ...message, ...event.data.json() };
  } catch {
    message.body = event.data?.text() ?? "";
  }
  event.waitUntil(
    self.registration.showNotification(message.title, {
      body: message.body,
      tag: message.tag,
      data: { url: self.registration.scope },
    }),
  );
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  event.waitUntil(
    self.clients.matchAll({ type: "window" }).then((windows) => {
      const open = windows.find((w) => w.url.startsWith(self.registration.scope));
      return open ? open.focus() : self.clients.openWindow(event.notification.data.url);
    }),
  );
});
