// An on-screen keyboard for the touch kiosk: Georgian (in alphabet order: most citizens do not
// type), Latin and Cyrillic. It types into the kiosk's search through the callbacks it is given.
import { h, t } from "./common.js";

const LAYOUTS = {
  ka: ["აბგდევზთი", "კლმნოპჟრს", "ტუფქღყშჩც", "ძწჭხჯჰ"],
  latin: ["qwertyuiop", "asdfghjkl", "zxcvbnm"],
  cyrillic: ["йцукенгшщзх", "фывапролджэ", "ячсмитьбюъ"],
};
const LAYOUT_NAMES = { ka: "ქართ", latin: "ABC", cyrillic: "АБВ" };
const FOR_LANGUAGE = { ka: "ka", ru: "cyrillic" };

export class Keyboard {
  constructor({ type, erase, clear }) {
    this.type = type;
    this.erase = erase;
    this.clear = clear;
    this.layout = null;
  }

  /** The keyboard as it should show for the page's language (until a layout is picked). */
  element(language) {
    const layout = this.layout ?? FOR_LANGUAGE[language] ?? "latin";
    const key = (label, onclick, extra = {}) =>
      h("button", { type: "button", class: "key", onclick, ...extra }, label);
    return h(
      "div",
      { class: "keyboard", id: "keyboard", role: "group", "aria-label": t("kiosk.keyboard") },
      h(
        "div",
        { class: "key-row layouts" },
        Object.entries(LAYOUT_NAMES).map(([id, name]) =>
          key(name, () => {
            this.layout = id;
            this.type("");
          }, { "aria-pressed": String(id === layout), "data-layout": id, class: "key layout" }),
        ),
      ),
      LAYOUTS[layout].map((row) =>
        h("div", { class: "key-row" }, Array.from(row, (letter) =>
          key(letter, () => this.type(letter), { "data-key": letter }))),
      ),
      h(
        "div",
        { class: "key-row" },
        key(t("kiosk.key_space"), () => this.type(" "), { class: "key wide", "data-key": " " }),
        key(h("span", {}, h("span", { "aria-hidden": "true" }, "⌫ "), t("kiosk.key_erase")), this.erase, {
          class: "key wide",
          id: "key-erase",
        }),
        key(t("kiosk.key_clear"), this.clear, { class: "key wide", id: "key-clear" }),
      ),
    );
  }
}
