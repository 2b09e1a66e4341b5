#!/usr/bin/env python3
"""Reference token ids for the C++ CLIP tokenizer (tests/test_clip_tokenizer.cpp).

Generates `--count` varied captions deterministically from `--seed` (hand-written edge cases
first, then random mixes of ASCII, punctuation, contractions, numbers, many scripts, emoji,
combining marks, fullwidth forms, curly quotes, ligatures, HTML entities, Unicode spaces,
control characters, special-token strings, upper case, over-long captions) and tokenizes them
with open_clip.tokenize:

    python scripts/tokenizer_reference.py --out ref.json [--count 1200] [--seed 0]

writes {"context_length": 77, "captions": [...], "tokens": [[77 ids], ...], ...}.

Captions that ftfy's mojibake repair (fix_encoding) would change are skipped: that heuristic
is not ported (docs/tokenizer.md), and the generator must not depend on luck to avoid it.
"""
import argparse
import json
import random
import sys

import ftfy
import open_clip

CONTEXT_LENGTH = 77

EDGE_CASES = [
    "a photo of a cat",
    "A Photo Of A Dog.",
    "",
    " ",
    "\t\n \u00a0\u3000",
    "it's they'll we've you'd I'M don't she'S",
    "It\u2019s \u201cquoted\u201d and \u2018single\u2019 and \u02bcmodifier",
    "\ufb01ne \ufb02ower o\ufb00ice \ufb03 \ufb04 \u0133 \u01c6 \u01c4 \ufb05 \ufb06",
    "it'\ufb05 'sa '\u017f \u017fs it'\u017f <\u017ftart_of_text>",
    "<start_of_text>",
    "<end_of_text>",
    "<START_OF_TEXT> <End_Of_Text>",
    "x<start_of_text>y<end_of_text>z !<end_of_text>",
    "&amp; &lt; &gt; &quot; &#39; &#x27; &apos;",
    "&amp;amp; &amp;lt;b&amp;gt; &amp;amp;amp;",
    "AT&T &copy2024 &notin &notit; &amp &ampx &lt3",
    "&#128512; &#x1F600; &#X1f600; &#0; &#128; &#150; &#x110000; &#55296; &#xD800; &#65 &#x41",
    "&#999999999999999999999; &#x; &#; &; &unknown; &Jscr; &checkmark; &HilbertSpace;",
    "P&EACUTE;REZ BUNDESSTRA&SZLIG;E &ntilde; &Ntilde; &NTILDE; &nTILDE;",
    "&eacute;&egrave;&hellip;&mdash;&ndash;&frac12;&nbsp;&shy;&zwj;",
    "&aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa; &abcdefghijklmnopqrstuvwxyz;",
    "<b>bold</b> &amp; tags",
    "first line &amp;\nsecond <i> &amp;\nthird &amp;",
    "first\r\nsecond\rthird\u2028fourth\u2029fifth\u0085sixth",
    "ctrl\x00\x01\x07\x08\x0b\x0c\x0e\x1b\x1f\x7f chars",
    "\x1b[31mred\x1b[0m \x1b[1;32mgreen\x1b[m",
    "BOM\ufeff inside \ufff9ann\ufffb \ufffc \u206a",
    "\uff2c\uff2f\uff35\uff24\u3000\uff2e\uff2f\uff29\uff33\uff25\uff33 \uff11\uff12\uff13\uff01",
    "\uff76\uff80\uff76\uff85 \uff73\uff80\uff70\uff9d",
    "\u0130stanbul \u1e9e STRASSE \u03a3\u0391\u03a3 \u039f\u0394\u03a5\u03a3\u03a3\u0395\u03a5\u03a3",
    "\u01c4 \u01c5 \u01f1 \u212a\u212b \u2160\u216b",
    "caf\u00e9 cafe\u0301 na\u00efve A\u030a \u1e9b\u0323",
    "\u03b1\u0345 \u1fb3 a\u0345b \u0345",
    "Z\u0351\u0357a\u036e\u0303l\u0346g\u033ao\u0353",
    "\U0001f600\U0001f44d\U0001f3fd \U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466 "
    "\U0001f3f3\ufe0f\u200d\U0001f308 \u2764\ufe0f \U0001f1ef\U0001f1f5",
    "\u732b\u306e\u5199\u771f \u5317\u4eac \ud55c\uad6d\uc5b4 \u0645\u0631\u062d\u0628\u0627 "
    "\u05e9\u05dc\u05d5\u05dd \u0e2a\u0e27\u0e31\u0e2a\u0e14\u0e35",
    "x\u00b2 \u00bd \u2122 \u2103 \u2460 \u0663\u0664 \u0e53 \u00b5 \u2211\u222b \u2030",
    "\u200b\u200c\u200d\u2060 \u180e \x1c\x1d\x1e\x1f \u202f\u205f\u2000\u200a",
    "https://example.com/a?b=c&d=e&copy=1&amp;x=2",
    "tab\tseparated\tvalues\t",
    "   leading and trailing   ",
    "!!!??? ... ,,, --- ((())) [[]] {{}} @@## $$%% ^^&& ** ++ == ~~ `` || \\\\ // ;;",
    "3.14159 1,000,000 2024-01-01 007 42nd 1st",
    "\u00a0\u00a0",
    "\u00ad soft hyphen",
]

WORDS = (
    "a an the of on in with and or to photo picture image drawing painting sketch close-up "
    "view cat dog bird car tree house street city beach mountain river sky cloud sunset person "
    "man woman child people group red blue green yellow black white small large old new happy "
    "running sitting standing playing eating flying night day winter summer table chair food "
    "pizza coffee book phone computer bicycle train airplane boat flower garden forest"
).split()
PUNCT = "!?.,;:-_()[]{}\"'/@#$%^*+=~`|\\"
CONTRACTIONS = ["it's", "they'll", "I'M", "we've", "you'd", "don't", "she's", "we're",
                "It\u2019s", "THEY'LL", "'s", "'re", "o'clock", "rock'n'roll"]
ACCENTED = ["caf\u00e9", "na\u00efve", "r\u00e9sum\u00e9", "\u00c5ngstr\u00f6m", "Z\u00fcrich",
            "fa\u00e7ade", "ni\u00f1o", "cafe\u0301", "S\u00e3o Paulo", "\u0141\u00f3d\u017a",
            "\u010cesk\u00fd", "\u0160koda", "Stra\u00dfe", "\u00d8resund", "\u00c6sir"]
GREEK = ["\u039f\u0394\u03a5\u03a3\u03a3\u0395\u03a5\u03a3", "\u03a3\u03af\u03c3\u03c5\u03c6\u03bf\u03c2",
         "\u03bb\u03cc\u03b3\u03bf\u03c2", "\u0391\u03a3", "\u03a3", "\u0391\u0398\u0397\u039d\u0391"]
CYRILLIC = ["\u041c\u043e\u0441\u043a\u0432\u0430", "\u041f\u0420\u0418\u0412\u0415\u0422",
            "\u043c\u0438\u0440", "\u0401\u043b\u043a\u0430", "\u0423\u043a\u0440\u0430\u0457\u043d\u0430"]
CJK = ["\u732b", "\u306e\u5199\u771f", "\u5317\u4eac", "\u6771\u4eac\u30bf\u30ef\u30fc",
       "\ud55c\uad6d\uc5b4", "\u30ab\u30bf\u30ab\u30ca", "\uff76\uff80\uff76\uff85", "\u3002\u3001"]
RTL = ["\u0645\u0631\u062d\u0628\u0627", "\u0628\u0627\u0644\u0639\u0627\u0644\u0645",
       "\u05e9\u05dc\u05d5\u05dd", "\u0663\u0664\u0665"]
EMOJI = ["\U0001f600", "\U0001f44d\U0001f3fd", "\U0001f468\u200d\U0001f469\u200d\U0001f467",
         "\U0001f3f3\ufe0f\u200d\U0001f308", "\u2764\ufe0f", "\U0001f1ef\U0001f1f5", "\U0001f431",
         "\U0001f9d1\U0001f3ff\u200d\U0001f4bb", "\u2615", "\U0001f525\U0001f525"]
COMBINING = ["e\u0301", "a\u0308", "o\u0302\u0323", "\u03b1\u0345", "n\u0303",
             "Z\u0351\u0357a\u036e", "i\u0307", "\u0301"]
FULLWIDTH = ["\uff2c\uff2f\uff35\uff24", "\uff11\uff12\uff13", "\uff01\uff1f", "\uff41\uff42\uff43",
             "\u3000", "\uffe5"]
QUOTES = ["\u201cquoted\u201d", "\u2018single\u2019", "\u201e low\u201f", "\u201bx\u201a",
          "\u02bcokina", "\u00abguillemets\u00bb"]
LIGATURES = ["\ufb01ne", "\ufb02ower", "o\ufb00", "\ufb03", "\ufb04", "\u0133s", "\u01c6",
             "\ufb05", "\ufb06", "\u01c8"]
ENTITIES = ["&amp;", "&lt;", "&gt;", "&quot;", "&#39;", "&#x27;", "&eacute;", "&EACUTE;",
            "&nbsp;", "&amp;amp;", "&amp;lt;", "&amp", "&copy", "&copy2024", "&notin", "&notin;",
            "&#128512;", "&#x1F600;", "&#65", "&#x41", "&hellip;", "&mdash;", "&frac12;",
            "&unknown;", "&;", "&#;", "&#0;", "&#128;", "&#x110000;", "&Jscr;", "&checkmark;",
            "&SZLIG;", "&amp;#39;", "&amp;quot;", "&lt3", "&ampamp;", "&#x2019;", "&rsquo;",
            "&ldquo;", "&fflig;", "&Auml;", "&AUML;", "&nbsp", "&times", "&#150;", "&#12354;"]
SPACES = ["\t", "\n", "\r\n", "\r", "\u00a0", "\u2003", "\u3000", "\u2028", "\u2029", "\u200b",
          "\x1c", "\x1f", "\u202f", "\u205f", "\u180e", "\u2009", "\x0c", "\x0b", "  "]
CONTROLS = ["\x00", "\x01", "\x07", "\x08", "\x0e", "\x1b", "\x7f", "\x1b[31m", "\x1b[0m",
            "\ufeff", "\ufffc", "\u206b", "\u200e", "\u202e"]
SPECIALS = ["<start_of_text>", "<end_of_text>", "<START_OF_TEXT>", "<End_of_Text>",
            "<start_of_text", "start_of_text>", "<b>", "a<b", "<"]
UPPER = ["\u0130stanbul", "\u1e9e", "STRASSE", "\u03a3\u0391\u03a3", "D\u017d", "\u01c4",
         "HELLO WORLD", "\u212a", "\u0130", "\u0049\u0307"]
SYMBOLS = ["x\u00b2", "\u00bd", "\u2122", "\u2103", "\u2460", "\u216b", "\u00b5", "\u2211",
           "\u221e", "\u00a9", "\u00ae", "\u00b0C", "\u20ac5", "$3.50", "\u00a7", "\u2030"]


def number(rng: random.Random) -> str:
    kind = rng.randrange(5)
    if kind == 0:
        return str(rng.randrange(10**rng.randrange(1, 10)))
    if kind == 1:
        return f"{rng.uniform(0, 1000):.{rng.randrange(1, 5)}f}"
    if kind == 2:
        return f"{rng.randrange(1, 10**7):,}"
    if kind == 3:
        return f"{rng.randrange(1900, 2100)}-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}"
    return rng.choice(["1st", "2nd", "3rd", "42nd", "007", "0", "1e10", "3x4"])


def word(rng: random.Random) -> str:
    w = rng.choice(WORDS)
    style = rng.randrange(6)
    if style == 0:
        return w.upper()
    if style == 1:
        return w.capitalize()
    return w


def fragment(rng: random.Random) -> str:
    kind = rng.choices(
        ["word", "punct", "contraction", "number", "accented", "greek", "cyrillic", "cjk", "rtl",
         "emoji", "combining", "fullwidth", "quote", "ligature", "entity", "space", "control",
         "special", "upper", "symbol"],
        weights=[30, 4, 4, 4, 3, 2, 2, 2, 2, 3, 2, 2, 2, 2, 5, 3, 1, 1, 2, 2])[0]
    if kind == "word":
        return word(rng)
    if kind == "punct":
        return "".join(rng.choice(PUNCT) for _ in range(rng.randrange(1, 6)))
    if kind == "number":
        return number(rng)
    table = {"contraction": CONTRACTIONS, "accented": ACCENTED, "greek": GREEK,
             "cyrillic": CYRILLIC, "cjk": CJK, "rtl": RTL, "emoji": EMOJI,
             "combining": COMBINING, "fullwidth": FULLWIDTH, "quote": QUOTES,
             "ligature": LIGATURES, "entity": ENTITIES, "space": SPACES, "control": CONTROLS,
             "special": SPECIALS, "upper": UPPER, "symbol": SYMBOLS}[kind]
    return rng.choice(table)


def caption(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.03:
        return rng.choice(["", " ", "\t", "\n\n", "\u00a0", "\u3000 \u2003"])
    n = rng.randrange(40, 140) if roll < 0.10 else rng.randrange(1, 14)  # 7%: over-long
    seps = [" "] * 12 + ["", ", ", ". ", "\n", "\t", " - "]
    parts = []
    for i in range(n):
        if i:
            parts.append(rng.choice(seps))
        parts.append(fragment(rng))
    return "".join(parts)


def touched_by_fix_encoding(text: str) -> bool:
    return ftfy.fix_text(text) != ftfy.fix_text(text, fix_encoding=False)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--count", type=int, default=1200)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    rng = random.Random(args.seed)
    captions, skipped = [], []
    for text in EDGE_CASES:
        (skipped if touched_by_fix_encoding(text) else captions).append(text)
    while len(captions) < args.count:
        text = caption(rng)
        (skipped if touched_by_fix_encoding(text) else captions).append(text)
    captions = captions[: args.count]
    tokens = open_clip.tokenize(captions, context_length=CONTEXT_LENGTH).tolist()
    over_long = sum(1 for t in tokens if t[-1] != 0)
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump({"context_length": CONTEXT_LENGTH, "seed": args.seed, "captions": captions,
                   "tokens": tokens, "skipped_fix_encoding": skipped}, f, ensure_ascii=True)
    print(f"{len(captions)} captions ({over_long} fill all {CONTEXT_LENGTH} slots), {len(skipped)} skipped because "
          f"ftfy's fix_encoding changes them -> {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
