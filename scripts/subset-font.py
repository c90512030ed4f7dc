#!/usr/bin/env python3
"""Builds the font subset Haitao embeds in e-invoice PDFs.

Source: Droid Sans Fallback (Apache License 2.0), from Debian's fonts-droid-fallback package.
Kept: ASCII, common punctuation, the 3,755 level-1 characters of GB 2312 (enough for almost every
name and address), every character of the shipped catalog, and the invoice template's text.

    apt-get install fonts-droid-fallback && pip install fonttools
    python3 scripts/subset-font.py

The output and the licence are committed under crates/shop/assets/fonts/.
"""
import json
import os
import re

from fontTools import subset

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SRC = "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf"
OUT = os.path.join(ROOT, "crates", "shop", "assets", "fonts", "HaitaoInvoiceSans.ttf")


def gb2312_level1():
    chars = []
    for hi in range(0xB0, 0xD8):
        for lo in range(0xA1, 0xFF):
            try:
                chars.append(bytes([hi, lo]).decode("gb2312"))
            except UnicodeDecodeError:
                pass
    return chars


def main():
    text = set(chr(c) for c in range(0x20, 0x7F))
    text |= set("，。、：；！？（）《》“”‘’【】—…·￥¥×＋－％：／　—–")
    text |= set(gb2312_level1())
    with open(os.path.join(ROOT, "crates", "shop", "catalog", "products.json"), encoding="utf-8") as f:
        for p in json.load(f)["products"]:
            for k in ("name_zh", "name_en", "brand_zh", "description_zh"):
                text |= set(p[k])
    with open(os.path.join(ROOT, "crates", "shop", "src", "invoice.rs"), encoding="utf-8") as f:
        for s in re.findall(r'"([^"\\]*)"', f.read()):
            text |= set(s)
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    opts = subset.Options()
    opts.name_IDs = ["*"]
    opts.notdef_outline = True
    opts.glyph_names = False
    opts.hinting = False
    font = subset.load_font(SRC, opts)
    sub = subset.Subsetter(opts)
    sub.populate(text="".join(sorted(text)))
    sub.subset(font)
    subset.save_font(font, OUT, opts)
    print(f"{len(text)} characters -> {OUT} ({os.path.getsize(OUT)} bytes)")


if __name__ == "__main__":
    main()
