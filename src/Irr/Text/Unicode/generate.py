#!/usr/bin/env python3
"""Writes normalization.txt, the Unicode normalization data of Irr.Text.UnicodeNormalizer.

Run from this folder with any Python 3 and Perl (`python3 generate.py`). The tables are those of Hugging Face
`tokenizers`, whose NFC/NFD/NFKC/NFKD normalizers run the crate unicode-normalization-alignments 0.1.12, built on
Unicode 9.0.0 data (its tables.rs: UNICODE_VERSION = (9, 0, 0)). A code point assigned later has, there, no
decomposition, no combining class and no composition: it is left as it is. Python's `unicodedata` (a later Unicode)
gives the data; Perl's Unicode::UCD gives each code point's Age, and only code points of Age 9.0 or earlier are
written. Unicode's stability policy (decompositions and combining classes of an assigned character never change)
makes this the Unicode 9.0 data. Hangul syllables are left out: they are composed and decomposed by algorithm.

Lines:
  C <cp> <ccc>                 canonical combining class (only non-zero ones)
  D <cp> <cp> ...              full canonical decomposition (NFD of the code point)
  K <cp> <cp> ...              full compatibility decomposition (NFKD), where it differs from D
  P <first> <second> <cp>      primary composite: canonical composition of the pair
"""
import subprocess
import unicodedata

HF_UNICODE = (9, 0)

def perl_ages():
    """Age of every code point as (major, minor), or None when unassigned, from Perl's Unicode::UCD."""
    script = r'''
use Unicode::UCD qw(prop_invmap);
my ($ranges, $values) = prop_invmap("Age");
print Unicode::UCD::UnicodeVersion(), "\n";
for my $i (0 .. $#$ranges) { print $ranges->[$i], " ", $values->[$i], "\n"; }
'''
    out = subprocess.run(["perl", "-e", script], check=True, capture_output=True, text=True).stdout.splitlines()
    if out[0] != unicodedata.unidata_version:
        raise SystemExit(f"Perl has Unicode {out[0]}, Python {unicodedata.unidata_version}: they must agree")
    starts = [(int(s), v) for s, v in (line.split(" ", 1) for line in out[1:])]
    ages = [None] * 0x110000
    for i, (start, value) in enumerate(starts):
        end = starts[i + 1][0] if i + 1 < len(starts) else 0x110000
        age = None if value in ("Unassigned", "NA") else tuple(int(x) for x in value.split("."))
        for cp in range(start, end):
            ages[cp] = age
    return ages

AGES = perl_ages()

def known(cp):
    return AGES[cp] is not None and AGES[cp] <= HF_UNICODE

def hangul(cp):
    return 0xAC00 <= cp <= 0xD7A3

lines = [f"# Unicode {unicodedata.unidata_version} data (Python's unicodedata) of the code points assigned by Unicode "
         f"{HF_UNICODE[0]}.{HF_UNICODE[1]} (Perl's Unicode::UCD Age), as HF tokenizers normalize; by generate.py"]
for cp in range(0x110000):
    if 0xD800 <= cp <= 0xDFFF or not known(cp):
        continue
    ccc = unicodedata.combining(chr(cp))
    if ccc:
        lines.append(f"C {cp:X} {ccc}")
for cp in range(0x110000):
    if 0xD800 <= cp <= 0xDFFF or hangul(cp) or not known(cp):
        continue
    c = chr(cp)
    d = unicodedata.normalize("NFD", c)
    k = unicodedata.normalize("NFKD", c)
    if d != c:
        lines.append("D " + " ".join(f"{ord(x):X}" for x in [c] + list(d)))
    if k != d:
        lines.append("K " + " ".join(f"{ord(x):X}" for x in [c] + list(k)))
for cp in range(0x110000):
    if 0xD800 <= cp <= 0xDFFF or hangul(cp) or not known(cp):
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
