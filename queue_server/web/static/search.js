// Service search for the kiosk: every name (in every language), its synonyms and the Latin
// spelling of its Georgian, Russian and Armenian names all become one "sound key", so `pirado`
// finds პირადობის მოწმობა, `pasport` and `паспорт` find პასპორტი, a missing diacritic or one
// wrong letter still finds, and a short word like `ID` matches whole words only.

const GEORGIAN = {
  ა: "a", ბ: "b", გ: "g", დ: "d", ე: "e", ვ: "v", ზ: "z", თ: "t", ი: "i", კ: "k", ლ: "l",
  მ: "m", ნ: "n", ო: "o", პ: "p", ჟ: "zh", რ: "r", ს: "s", ტ: "t", უ: "u", ფ: "p", ქ: "k",
  ღ: "gh", ყ: "q", შ: "sh", ჩ: "ch", ც: "ts", ძ: "dz", წ: "ts", ჭ: "ch", ხ: "kh", ჯ: "j", ჰ: "h",
};
const CYRILLIC = {
  а: "a", б: "b", в: "v", г: "g", д: "d", е: "e", ё: "e", ж: "zh", з: "z", и: "i", й: "i",
  к: "k", л: "l", м: "m", н: "n", о: "o", п: "p", р: "r", с: "s", т: "t", у: "u", ф: "f",
  х: "kh", ц: "ts", ч: "ch", ш: "sh", щ: "shch", ъ: "", ы: "y", ь: "", э: "e", ю: "yu", я: "ya",
};
const ARMENIAN = {
  ա: "a", բ: "b", գ: "g", դ: "d", ե: "e", զ: "z", է: "e", ը: "y", թ: "t", ժ: "zh", ի: "i",
  լ: "l", խ: "kh", ծ: "ts", կ: "k", հ: "h", ձ: "dz", ղ: "gh", ճ: "ch", մ: "m", յ: "y", ն: "n",
  շ: "sh", ո: "o", չ: "ch", պ: "p", ջ: "j", ռ: "r", ս: "s", վ: "v", տ: "t", ր: "r", ց: "ts",
  ւ: "v", փ: "p", ք: "k", օ: "o", ֆ: "f", և: "ev",
};
const LETTERS = { ...GEORGIAN, ...CYRILLIC, ...ARMENIAN, ə: "e", ı: "i", ß: "ss" };
// Spellings of one sound that people mix up when they type another alphabet in Latin letters.
const SOUNDS = [
  [/shch/g, "sh"], [/tch/g, "ch"], [/kh|x/g, "h"], [/ts|tz|c(?!h)/g, "c"], [/ch/g, "c"],
  [/sh/g, "s"], [/zh/g, "j"], [/dz/g, "z"], [/gh/g, "g"], [/ph|f/g, "p"], [/q/g, "k"],
  [/y/g, "i"], [/w/g, "v"], [/(.)\1+/g, "$1"],
];
const SHORT_WORD = 2; // a query word this short matches whole words only ("ID", not "resIDence")

/** Lower case, no diacritics, every script in Latin letters. */
export function fold(text) {
  return Array.from((text || "").toLocaleLowerCase().normalize("NFKD").replace(/\p{M}/gu, ""))
    .map((ch) => LETTERS[ch] ?? ch)
    .join("");
}

/** The words of a text as sound keys. */
export function soundWords(text) {
  return fold(text)
    .split(/[^\p{L}\p{N}]+/u)
    .filter(Boolean)
    .map((word) => SOUNDS.reduce((key, [pattern, to]) => key.replace(pattern, to), word));
}

/** Edit distance (with swaps) between `a` and the closest prefix of `b`, capped at `limit`+1. */
function prefixDistance(a, b, limit) {
  let previous = null;
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i += 1) {
    const next = [i];
    for (let j = 1; j <= b.length; j += 1) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let value = Math.min(row[j] + 1, next[j - 1] + 1, row[j - 1] + cost);
      if (previous && i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        value = Math.min(value, previous[j - 2] + 1);
      }
      next.push(value);
    }
    previous = row;
    row = next;
  }
  return Math.min(limit + 1, ...row);
}

/** How well one query word matches one word of a service (0: not at all). */
function wordScore(query, word) {
  if (word === query) return 4;
  if (query.length <= SHORT_WORD) return 0;
  if (word.startsWith(query)) return 3;
  if (query.length >= 4 && word.includes(query)) return 1.5;
  if (query.length < 4) return 0;
  const allowed = query.length >= 7 ? 2 : 1;
  return prefixDistance(query, word, allowed) <= allowed ? 1 : 0;
}

/** A service's searchable words: names in every language, synonyms (worth more), the agency. */
export function searchIndex(service, agencyName) {
  const names = Object.values(service.name ?? {}).filter(Boolean);
  return {
    service,
    // A name that is little more than the query is the better match ("Passport" over "Collect
    // a ready ID card or passport").
    shortest: Math.min(...names.map((name) => soundWords(name).length || 1)),
    names: Object.values(service.name ?? {}).filter(Boolean).flatMap(soundWords),
    terms: (service.terms ?? []).flatMap(soundWords),
    agency: Object.values(agencyName ?? {}).filter(Boolean).flatMap(soundWords),
  };
}

function score(entry, queryWords) {
  let total = 0;
  for (const query of queryWords) {
    const best = (words, weight) => Math.max(0, ...words.map((w) => wordScore(query, w) * weight));
    const found = Math.max(best(entry.terms, 1.5), best(entry.names, 1), best(entry.agency, 0.3));
    if (found === 0) return 0;
    total += found;
  }
  return total + 1 / entry.shortest;
}

/** The services that match `query`, best first; ties go to the more used service. */
export function rankServices(index, query, usage = () => 0) {
  const queryWords = soundWords(query);
  if (!queryWords.length) return [];
  return index
    .map((entry) => ({ service: entry.service, score: score(entry, queryWords) }))
    .filter((hit) => hit.score > 0)
    .sort((a, b) => b.score - a.score || usage(b.service) - usage(a.service))
    .map((hit) => hit.service);
}
