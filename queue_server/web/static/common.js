// Shared by every page: translations, DOM building, the API with credentials, live feeds.

export const boot = JSON.parse(document.getElementById("rigi-boot").textContent);

let language = boot.lang;
let messages = boot.messages;
const languageListeners = [];

/** The text of `key` in the current language, with {name} placeholders filled. */
export function t(key, vars = {}) {
  const text = messages[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => (name in vars ? String(vars[name]) : `{${name}}`));
}

/** An API error in the page's language: its code's message, else the server's text. */
export function errorText(error) {
  if (error?.status === 0) return t("common.offline");
  const key = `error.${error?.code}`;
  return messages[key] ?? (error?.message || t("error.error"));
}

export function currentLanguage() {
  return language;
}

/** A localized catalogue name ({ka, en, ru, …}) in the current language, else Georgian/English. */
export function localized(names) {
  if (!names) return "";
  return names[language] || (language === "ka" ? names.ka : names.en) || names.ka || "";
}

export function onLanguageChange(listener) {
  languageListeners.push(listener);
}

/** Switch every text on the page to `code`, fetching its catalogue from the server. */
export async function setLanguage(code) {
  if (code !== language) {
    const response = await fetch(`/i18n/${encodeURIComponent(code)}.json`);
    if (!response.ok) return;
    messages = await response.json();
    language = code;
  }
  document.documentElement.lang = code;
  document.title = t(`${boot.page}.title`);
  for (const listener of languageListeners) listener(code);
}

/** Build an element: h("button", {class: "x", onclick: f}, "text", child). */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else if (name === "dataset") Object.assign(element.dataset, value);
    else element.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

/** A row of language buttons; the current one is marked pressed. */
export function languageSwitcher() {
  const nav = h("nav", { class: "languages", "aria-label": t("common.language") });
  for (const { code, name } of boot.languages) {
    nav.append(
      h(
        "button",
        {
          type: "button",
          lang: code,
          class: "language",
          "aria-pressed": String(code === language),
          onclick: () => setLanguage(code),
        },
        name,
      ),
    );
  }
  return nav;
}

// ---- credentials ----------------------------------------------------------------------------

const DEVICE_TOKEN_KEY = "rigi.device-token";

/** A kiosk's or display's device token: taken once from `?setup=…`, then kept in localStorage
 *  (and removed from the address bar so it never lingers in history or a screenshot). */
export function deviceToken() {
  const params = new URLSearchParams(location.search);
  const setup = params.get("setup");
  const key = `${DEVICE_TOKEN_KEY}.${boot.branch?.id ?? ""}`;
  if (setup) {
    try {
      localStorage.setItem(key, setup);
    } catch {
      /* private mode: the token lives only for this page */
    }
    params.delete("setup");
    const query = params.toString();
    history.replaceState(null, "", location.pathname + (query ? `?${query}` : "") + location.hash);
    return setup;
  }
  try {
    return localStorage.getItem(key);
  } catch {
    return null;
  }
}

export const session = { csrf: null, user: null, available: true };

export class ApiError extends Error {
  constructor(status, code, message, details = null) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;  // e.g. the fields an organisation edit was refused for
  }
}

/** Read the branch page's boot data again (services, agencies, areas, screens) after an
 *  `organisation.changed` event, so the page follows a manager's edit without a reload. */
export async function refreshBoot() {
  const response = await fetch(`/boot/${encodeURIComponent(boot.branch.id)}.json`);
  if (!response.ok) throw new ApiError(response.status, "http_error", "");
  const fresh = await response.json();
  for (const key of ["services", "agencies", "areas", "screens", "counters"]) boot[key] = fresh[key];
}

/** Call the API: JSON in and out, the device token as Bearer, the CSRF header with a session. */
export async function api(method, path, body = undefined, { token = null, headers = {} } = {}) {
  const sent = { Accept: "application/json", ...headers };
  if (body !== undefined) sent["Content-Type"] = "application/json";
  if (token) sent.Authorization = `Bearer ${token}`;
  if (session.csrf && method !== "GET") sent["X-CSRF-Token"] = session.csrf;
  let response;
  try {
    response = await fetch(path, {
      method,
      headers: sent,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
    });
  } catch {
    throw new ApiError(0, "offline", t("common.offline"));
  }
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    throw new ApiError(response.status, data?.code ?? "http_error", data?.message ?? "", data?.details ?? null);
  }
  return data;
}

/** Ask whether a person is signed in. Until the server has sign-in, pages work without it. */
export async function loadSession() {
  try {
    const data = await api("GET", "/api/v1/session");
    session.user = data.user;
    session.csrf = data.csrf_token;
    return "signed_in";
  } catch (error) {
    if (error.status === 404 || error.status === 405) {
      session.available = false;
      return "not_required";
    }
    return "signed_out";
  }
}

export async function signIn(username, password) {
  const data = await api("POST", "/api/v1/session", { username, password });
  session.user = data.user;
  session.csrf = data.csrf_token;
}

/** The sign-in form for staff pages; `done()` runs once the person is signed in. */
export function signInForm(done) {
  const error = h("p", { class: "error", role: "alert", hidden: true });
  return h(
    "form",
    {
      class: "signin",
      id: "signin",
      onsubmit: async (event) => {
        event.preventDefault();
        const form = event.target;
        try {
          await signIn(form.elements.username.value, form.elements.password.value);
          done();
        } catch (failure) {
          error.hidden = false;
          error.textContent = failure.status === 0 ? t("common.offline") : t("console.signin_failed");
        }
      },
    },
    h("h2", {}, t("console.signin")),
    error,
    h(
      "div",
      { class: "field" },
      h("label", { for: "username" }, t("console.username")),
      h("input", { id: "username", name: "username", autocomplete: "username", required: true }),
    ),
    h(
      "div",
      { class: "field" },
      h("label", { for: "password" }, t("console.password")),
      h("input", {
        id: "password",
        name: "password",
        type: "password",
        autocomplete: "current-password",
        required: true,
      }),
    ),
    h("button", { type: "submit", class: "primary", id: "signin-submit" }, t("console.signin")),
  );
}

export async function signOut() {
  await api("POST", "/api/v1/session/logout").catch(() => null);
  session.user = null;
  session.csrf = null;
}

// ---- live feeds -----------------------------------------------------------------------------

const RETRY_FIRST_MS = 500;
const RETRY_MAX_MS = 10_000;

/** A WebSocket feed that says hello, answers pings and reconnects by itself with backoff.
 *  `resume()` gives the {epoch, after_seq} to send, so the server can replay or snapshot. */
export class Feed {
  constructor(path, { token = null, resume = () => ({}), onMessage, onState = () => {} }) {
    this.path = path;
    this.token = token;
    this.resume = resume;
    this.onMessage = onMessage;
    this.onState = onState;
    this.retryMs = RETRY_FIRST_MS;
    this.timer = null;
    this.stopped = false;
    window.addEventListener("online", () => this.reconnectNow());
  }

  start() {
    this.stopped = false;
    this.connect();
    return this;
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    this.socket?.close(1000, "bye");
  }

  /** Drop the connection and open a new one that resumes from the last seq. */
  restart() {
    this.socket?.close(4000, "resync");
  }

  reconnectNow() {
    if (this.stopped || this.socket?.readyState === WebSocket.OPEN) return;
    clearTimeout(this.timer);
    this.retryMs = RETRY_FIRST_MS;
    this.connect();
  }

  connect() {
    clearTimeout(this.timer);
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const socket = new WebSocket(`${scheme}://${location.host}${this.path}`);
    this.socket = socket;
    this.onState("connecting");
    socket.addEventListener("open", () => {
      const { epoch = null, after_seq = null } = this.resume() ?? {};
      socket.send(JSON.stringify({ type: "hello", token: this.token, epoch, after_seq }));
      this.retryMs = RETRY_FIRST_MS;
      this.onState("live");
    });
    socket.addEventListener("message", (event) => {
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        return;
      }
      if (message.type === "ping") {
        socket.send('{"type":"pong"}');
        return;
      }
      this.onMessage(message, this);
    });
    socket.addEventListener("close", (event) => {
      if (this.socket !== socket) return;
      this.onState(this.stopped ? "stopped" : "offline", event.code);
      if (this.stopped) return;
      const delay = this.retryMs * (0.75 + Math.random() / 2);
      this.retryMs = Math.min(this.retryMs * 2, RETRY_MAX_MS);
      this.timer = setTimeout(() => this.connect(), event.code === 4000 ? 0 : delay);
    });
  }
}

// ---- time and sound -------------------------------------------------------------------------

export function minutesSince(iso, now = Date.now()) {
  if (!iso) return 0;
  return Math.max(0, Math.floor((now - Date.parse(iso)) / 60_000));
}

export function clockText(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const m = Math.floor(s / 60);
  return `${m}:${String(s % 60).padStart(2, "0")}`;
}

let audio = null;

/** The page's AudioContext; browsers start it suspended until a person touches the page. */
export function audioContext() {
  if (!audio && window.AudioContext) audio = new AudioContext();
  return audio;
}

/** A two-tone chime (no file needed), the sound a lobby hears before each call. */
export function chime() {
  const context = audioContext();
  if (!context || context.state !== "running") return false;
  const start = context.currentTime + 0.02;
  [
    [880, 0],
    [660, 0.35],
  ].forEach(([frequency, offset]) => {
    const oscillator = context.createOscillator();
    const gain = context.createGain();
    oscillator.frequency.value = frequency;
    gain.gain.setValueAtTime(0.0001, start + offset);
    gain.gain.exponentialRampToValueAtTime(0.4, start + offset + 0.03);
    gain.gain.exponentialRampToValueAtTime(0.0001, start + offset + 0.5);
    oscillator.connect(gain).connect(context.destination);
    oscillator.start(start + offset);
    oscillator.stop(start + offset + 0.55);
  });
  return true;
}

/** Announce text to screen readers through a polite or assertive live region. */
export function announce(region, text) {
  region.textContent = "";
  setTimeout(() => {
    region.textContent = text;
  }, 50);
}

/** Replace an element's content, skipping empty (null/false) parts. */
export function show(root, ...children) {
  root.replaceChildren(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
}

// "about 10–25 min" and "9 in 10 are called within 25 min" when a forecast is known; says so
// when no open counter serves the service now.
export function waitText(ticket) {
  if (ticket.served_now === false) return notServedText(ticket);
  const range = ticket.wait_range;
  if (range) {
    return [
      t("common.wait_range", { low: range.median_min, high: range.p90_min }),
      h("br"),
      h("small", { id: "wait-p90" }, t("common.wait_p90", { n: range.p90_min })),
    ];
  }
  return ticket.wait_minutes == null ? "–" : t("common.minutes", { n: ticket.wait_minutes });
}

/** No open counter serves it now: say so, and when the next one opens when known. */
export function notServedText(wait) {
  if (!wait.next_open_at) return t("common.not_served_now");
  const opens = new Date(wait.next_open_at);
  const time = opens.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  return t("common.not_served_until", { time });
}

/** Re-rendering replaces a form: give the field that had the focus (by id) its focus and caret
 *  back, so a refresh while someone types does not throw them out. */
export function keepingFocus(render) {
  const focused = document.activeElement?.id;
  render();
  const again = focused && document.getElementById(focused);
  if (!again || again === document.activeElement) return;
  again.focus({ preventScroll: true });
  if (again.tagName !== "INPUT") return;
  try {
    again.setSelectionRange(again.value.length, again.value.length);
  } catch {
    // e-mail and number fields have no caret API: the browser keeps its own
  }
}
