// String tests for what a default serve runs: loops, not regular expressions.
// The first regular expression a process runs brings in the regular-expression
// compiler, which then stays resident (measured: ~0.6 MiB of idle RSS). Option
// values that are given (--match, --rate, numbers) may still use them.

/** Only the characters from lo to hi (char codes) from `from` on, and at least one. */
export function onlyChars(s: string, lo: number, hi: number, from = 0): boolean {
  if (s.length <= from) return false;
  for (let i = from; i < s.length; i++) if (s.charCodeAt(i) < lo || s.charCodeAt(i) > hi) return false;
  return true;
}

/** Only the digits 0–9, at least one. */
export const onlyDigits = (s: string, from = 0): boolean => onlyChars(s, 48, 57, from);

/** The decimal number right after `label` in text (spaces between skipped), or null: no label, or no digits there. */
export function numberAfter(text: string, label: string): number | null {
  const at = text.indexOf(label);
  if (at === -1) return null;
  let from = at + label.length;
  while (text.charCodeAt(from) === 32) from++;
  let end = from;
  while (end < text.length && text.charCodeAt(end) >= 48 && text.charCodeAt(end) <= 57) end++;
  return end > from ? Number(text.slice(from, end)) : null;
}

/** Only [A-Za-z0-9_./+-], at least one: a path safe to print unquoted. */
export function plainPath(s: string): boolean {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const word = (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95;
    if (!word && c !== 46 && c !== 47 && c !== 43 && c !== 45) return false;
  }
  return true;
}
