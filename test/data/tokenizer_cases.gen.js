const fs = require("fs");
const tok = require("gpt-tokenizer/encoding/r50k_base");
const g3 = require("gpt-3-encoder");
const evalTxt = fs.readFileSync("/work/shared/models/kjv-gpt2-tiny/eval.txt", "utf8");
const cases = [
  "", " ", "  ", "a  b", "a   b", "hello   ", "   hello", " hello world", "\thello", "a\tb", "a \t b",
  "\n", "\n\n", "a\n\nb", "line1\r\nline2", "end\n", " \n ",
  "12345", "3.14159", "1,000,000", "year 2024",
  "Hello, world!", "...", "?!?!", "(a)[b]{c}",
  "don't", "I'm", "you're", "we've", "they'll", "he'd", "it's", "DON'T", "'s", "the king's house",
  "café", "naïve", "Ünïcödé", "日本語のテキスト", "Привет мир", "emoji 😀🎉", "mixed: αβγ 123 ÆØÅ", "عربي",
  "٣٤٥", "²³",
  "a\u00a0b", "a\u2003b", "a\u3000b",
  "\u0000x", "a\u001fb",
  "And it came to pass, when men began to multiply on the face of the earth, and daughters were born unto them, That the sons of God saw the daughters of men that they were fair; and they took them wives of all which they chose.",
  "<|endoftext|>", "text<|endoftext|>more",
  "def f(x):\n    return x**2", "for (int i = 0; i < n; ++i) { sum += a[i]; }",
  "https://www.example.com/path?query=1&x=y#frag", "user@example.org",
  "aaaaaaaaaaaaaaaaaaaa", "!!!!!!!!!!!!",
  Array.from(evalTxt).slice(0, 2000).join(""),
];
const out = []; let bad = 0;
for (const text of cases) {
  const ids = tok.encode(text, { allowedSpecial: new Set(), disallowedSpecial: new Set() });
  const ids2 = g3.encode(text);
  const dec = tok.decode(ids);
  const roundtrip = dec === text;
  const agree = JSON.stringify(ids) === JSON.stringify(ids2);
  if (!roundtrip || !agree) { bad++; console.log("NOTE", JSON.stringify(text), {roundtrip, agree, ids, ids2}); }
  out.push({ text, ids, roundtrip });
}
fs.writeFileSync("tokenizer_cases.json", "[\n" + out.map(o => JSON.stringify(o)).join(",\n") + "\n]\n");
console.log(out.length, "cases;", bad, "flagged");
