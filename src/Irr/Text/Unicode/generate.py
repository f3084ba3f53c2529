#!/usr/bin/env python3
"""Writes normalization.txt, the Unicode normalization data of Irr.Text.UnicodeNormalizer.

Run from this folder with any Python 3 (`python3 generate.py`); the data is that of the Python's
`unicodedata` module (its Unicode version is written in the file's first line). Hangul syllables are
left out: they are composed and decomposed by algorithm.

Lines:
  C <cp> <ccc>                 canonical combining class (only non-zero ones)
  D <cp> <cp> ...              full canonical decomposition (NFD of the code point)
  K <cp> <cp> ...              full compatibility decomposition (NFKD), where it differs from D
  P <first> <second> <cp>      primary composite: canonical composition of the pair
"""
import unicodedata

def hangul(cp):
    return 0xAC00 <= cp <= 0xD7A3

lines = [f"# Unicode {unicodedata.unidata_version}, from Python's unicodedata by generate.py"]
for cp in range(0x110000):
    if 0xD800 <= cp <= 0xDFFF:
        continue
    ccc = unicodedata.combining(chr(cp))
    if ccc:
        lines.append(f"C {cp:X} {ccc}")
for cp in range(0x110000):
    if 0xD800 <= cp <= 0xDFFF or hangul(cp):
        continue
    c = chr(cp)
    d = unicodedata.normalize("NFD", c)
    k = unicodedata.normalize("NFKD", c)
    if d != c:
        lines.append("D " + " ".join(f"{ord(x):X}" for x in [c] + list(d)))
    if k != d:
        lines.append("K " + " ".join(f"{ord(x):X}" for x in [c] + list(k)))
for cp in range(0x110000):
    if 0xD800 <= cp <= 0xDFFF or hangul(cp):
        continue
    c = chr(cp)
    dec = unicodedata.decomposition(c)
    if not dec or dec.startswith("<"):
        continue
    parts = [int(x, 16) for x in dec.split()]
    if len(parts) == 2 and unicodedata.normalize("NFC", chr(parts[0]) + chr(parts[1])) == c:
        lines.append(f"P {parts[0]:X} {parts[1]:X} {cp:X}")
with open("normalization.txt", "w", encoding="ascii", newline="\n") as f:
    f.write("\n".join(lines) + "\n")
