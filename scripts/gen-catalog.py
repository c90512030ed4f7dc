#!/usr/bin/env python3
"""Generates Haitao's demo catalog: crates/shop/catalog/products.json and one SVG image per product.

The output is committed; this script only needs re-running when the catalog design changes.
It is deterministic (fixed seed), so re-running it without changes reproduces the same files.
Brands are invented; no real trademark is used.

    python3 scripts/gen-catalog.py
"""
import hashlib
import json
import os
import random

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "crates", "shop", "catalog")
IMG = os.path.join(OUT, "images")

# Origin country -> (currency, minor units per major)
CUR = {"US": "USD", "JP": "JPY", "KR": "KRW", "DE": "EUR", "FR": "EUR", "IT": "EUR", "GB": "GBP",
       "AU": "AUD", "NZ": "NZD", "CH": "CHF", "HK": "HKD", "CA": "CAD", "CN": "CNY"}
EXP = {"JPY": 0, "KRW": 0}
# Rough CNY per unit, only to keep generated prices plausible; the shop's own FX table prices them.
CNY_PER = {"USD": 7.1, "JPY": 0.048, "KRW": 0.0052, "EUR": 7.75, "GBP": 9.05, "AUD": 4.7, "NZD": 4.3,
           "CHF": 8.1, "HKD": 0.91, "CAD": 5.2, "CNY": 1.0}

# Invented brands: (en, zh, origin)
BRANDS = {
    "cosmetics": [("Kirala", "绮拉", "JP"), ("Seoyun", "瑞允", "KR"), ("Maison Lumière", "光之屋", "FR"),
                  ("Nordbloom", "北境花", "US"), ("Hartwell & Rose", "哈特玫瑰", "GB"), ("Saltbush", "盐丛", "AU")],
    "maternal_baby": [("Kiwi Meadow", "奇异牧场", "NZ"), ("Little Wattle", "小金合欢", "AU"), ("Sonnenkind", "阳光宝贝", "DE"),
                      ("Hinata Baby", "向阳宝宝", "JP"), ("Puremilk Co.", "纯乳", "NZ")],
    "health": [("Vitaleaf", "维叶", "US"), ("Southern Cross Health", "南十字", "AU"), ("Alpenkraft", "阿尔卑斯之力", "DE"),
               ("Tasman Pure", "塔斯曼", "NZ"), ("Kenkō Lab", "健康研", "JP")],
    "food": [("Manuka Ridge", "麦卢卡岭", "NZ"), ("Trattoria Sole", "阳光食坊", "IT"), ("Choco Alpina", "阿尔卑斯巧克力", "CH"),
             ("Umami Hana", "鲜花", "JP"), ("Jeju Garden", "济州园", "KR"), ("Château Vérin", "维林酒庄", "FR"),
             ("Outback Pantry", "内陆食仓", "AU"), ("Maple Hollow", "枫谷", "CA")],
    "electronics": [("Sonaro", "索纳诺", "JP"), ("Hanbit Tech", "韩光科技", "KR"), ("Brightwave", "亮波", "US"),
                    ("Klarwerk", "明工坊", "DE"), ("Takumi Home", "匠家电", "JP")],
    "fashion": [("Via Moda", "时尚大道", "IT"), ("Atelier Nord", "北方工坊", "FR"), ("Highland Loom", "高地织造", "GB"),
                ("Coastline", "海岸线", "US"), ("Seoul Stitch", "首尔针线", "KR"), ("Kumo Wear", "云衣", "JP")],
    "home": [("Stahlhaus", "钢之家", "DE"), ("Sakura Kitchen", "樱花厨房", "JP"), ("Casa Bella", "美居", "IT"),
             ("Oak & Ember", "橡木余烬", "GB"), ("Hanok Living", "韩屋生活", "KR")],
    "luxury": [("Maison Verrier", "维里耶之家", "FR"), ("Orologi Fiore", "花之表", "IT"), ("Genfer Uhren", "日内瓦钟表", "CH"),
               ("Bond Street Gold", "邦德街金饰", "GB"), ("Victoria Harbour Jewels", "维港珠宝", "HK")],
}

# (type key, zh, en, shape, base CNY price range, weight g, tax category, specs[(zh, en, price multiplier)])
TYPES = {
    "cosmetics": [
        ("face_cream", "保湿面霜", "Moisturising Face Cream", "jar", (180, 680), 120, "cosmetic",
         [("50ml", "50 ml", 1.0), ("30ml", "30 ml", 0.7)]),
        ("serum", "精华液", "Essence Serum", "bottle", (260, 980), 110, "cosmetic", [("30ml", "30 ml", 1.0), ("50ml", "50 ml", 1.4)]),
        ("sunscreen", "清爽防晒乳 SPF50+", "Light Sunscreen SPF50+", "tube", (90, 260), 80, "cosmetic", [("60ml", "60 ml", 1.0)]),
        ("cleanser", "氨基酸洁面乳", "Amino Acid Cleanser", "tube", (60, 180), 150, "cosmetic", [("120g", "120 g", 1.0)]),
        ("mask", "补水面膜 10片装", "Hydrating Sheet Masks, 10 pack", "box", (80, 240), 260, "general", [("", "", 1.0)]),
        ("lipstick", "丝绒口红", "Velvet Lipstick", "lipstick", (180, 420), 40, "cosmetic", [("3.5g", "3.5 g", 1.0)]),
        ("eye_cream", "紧致眼霜", "Firming Eye Cream", "jar", (300, 1100), 60, "cosmetic", [("15ml", "15 ml", 1.0)]),
        ("toner", "柔肤水", "Softening Toner", "bottle", (120, 420), 260, "cosmetic", [("200ml", "200 ml", 1.0)]),
        ("perfume", "淡香水", "Eau de Toilette", "perfume", (400, 1500), 300, "cosmetic", [("50ml", "50 ml", 1.0), ("100ml", "100 ml", 1.5)]),
        ("hand_cream", "护手霜", "Hand Cream", "tube", (40, 120), 70, "general", [("75ml", "75 ml", 1.0)]),
    ],
    "maternal_baby": [
        ("formula1", "婴儿配方奶粉 1段", "Infant Formula Stage 1", "can", (180, 420), 1000, "general", [("800g", "800 g", 1.0)]),
        ("formula2", "较大婴儿配方奶粉 2段", "Follow-on Formula Stage 2", "can", (170, 400), 1000, "general", [("800g", "800 g", 1.0)]),
        ("formula3", "幼儿配方奶粉 3段", "Toddler Formula Stage 3", "can", (160, 380), 1000, "general", [("800g", "800 g", 1.0)]),
        ("diapers", "超薄纸尿裤", "Ultra-thin Diapers", "box", (100, 220), 1800, "general", [("M 64片", "M, 64 pcs", 1.0), ("L 54片", "L, 54 pcs", 1.05)]),
        ("wipes", "婴儿湿巾 80抽×6包", "Baby Wipes, 6 × 80", "box", (60, 130), 2200, "general", [("", "", 1.0)]),
        ("bottle_baby", "宽口径玻璃奶瓶", "Wide-neck Glass Feeding Bottle", "babybottle", (90, 240), 300, "general", [("240ml", "240 ml", 1.0)]),
        ("baby_food", "有机果泥 12袋", "Organic Fruit Purée, 12 pouches", "box", (90, 200), 1300, "reduced", [("", "", 1.0)]),
        ("baby_lotion", "婴儿润肤乳", "Baby Moisturising Lotion", "bottle", (70, 180), 350, "general", [("300ml", "300 ml", 1.0)]),
    ],
    "health": [
        ("fish_oil", "深海鱼油软胶囊", "Deep-sea Fish Oil Softgels", "pillbottle", (120, 360), 400, "general", [("200粒", "200 caps", 1.0)]),
        ("vitamin_c", "维生素C泡腾片", "Vitamin C Effervescent Tablets", "tube", (50, 150), 200, "general", [("60片", "60 tabs", 1.0)]),
        ("probiotics", "益生菌胶囊", "Probiotic Capsules", "pillbottle", (160, 480), 150, "general", [("60粒", "60 caps", 1.0)]),
        ("protein", "乳清蛋白粉", "Whey Protein Powder", "can", (260, 620), 2300, "general", [("2kg", "2 kg", 1.0)]),
        ("calcium", "钙+维生素D3片", "Calcium + Vitamin D3 Tablets", "pillbottle", (80, 220), 300, "general", [("120片", "120 tabs", 1.0)]),
        ("lutein", "叶黄素护眼软胶囊", "Lutein Eye Health Softgels", "pillbottle", (120, 320), 120, "general", [("90粒", "90 caps", 1.0)]),
        ("collagen", "胶原蛋白肽粉", "Collagen Peptide Powder", "can", (200, 520), 500, "general", [("300g", "300 g", 1.0)]),
        ("multivitamin", "复合维生素", "Multivitamin", "pillbottle", (100, 300), 250, "general", [("120片", "120 tabs", 1.0)]),
        ("propolis", "蜂胶软胶囊", "Propolis Softgels", "pillbottle", (140, 380), 200, "general", [("365粒", "365 caps", 1.0)]),
    ],
    "food": [
        ("manuka", "麦卢卡蜂蜜", "Manuka Honey", "jar", (180, 900), 600, "reduced", [("UMF10+ 500g", "UMF 10+, 500 g", 1.0), ("UMF15+ 250g", "UMF 15+, 250 g", 1.3)]),
        ("chocolate", "黑巧克力礼盒", "Dark Chocolate Gift Box", "box", (80, 260), 500, "general", [("400g", "400 g", 1.0)]),
        ("olive_oil", "特级初榨橄榄油", "Extra Virgin Olive Oil", "oil", (90, 260), 1100, "reduced", [("1L", "1 L", 1.0)]),
        ("coffee", "阿拉比卡咖啡豆", "Arabica Coffee Beans", "pouch", (90, 240), 1000, "general", [("1kg", "1 kg", 1.0)]),
        ("biscuits", "黄油曲奇", "Butter Cookies", "tin", (60, 180), 700, "general", [("500g", "500 g", 1.0)]),
        ("seaweed", "调味海苔", "Seasoned Seaweed Snacks", "box", (40, 110), 300, "reduced", [("16包", "16 packs", 1.0)]),
        ("wine", "干红葡萄酒", "Dry Red Wine", "wine", (180, 900), 1500, "wine", [("750ml", "750 ml", 1.0)]),
        ("pasta", "杜兰小麦意面", "Durum Wheat Pasta", "box", (40, 100), 2000, "reduced", [("4×500g", "4 × 500 g", 1.0)]),
        ("oats", "有机燕麦片", "Organic Rolled Oats", "pouch", (50, 120), 1500, "reduced", [("1.5kg", "1.5 kg", 1.0)]),
        ("maple", "纯枫糖浆", "Pure Maple Syrup", "oil", (90, 220), 700, "general", [("500ml", "500 ml", 1.0)]),
        ("tea", "抹茶粉", "Ceremonial Matcha Powder", "tin", (120, 360), 150, "general", [("100g", "100 g", 1.0)]),
    ],
    "electronics": [
        ("toothbrush", "声波电动牙刷", "Sonic Electric Toothbrush", "toothbrush", (300, 1300), 400, "general", [("标准版", "Standard", 1.0), ("旗舰版", "Flagship", 1.6)]),
        ("hair_dryer", "负离子吹风机", "Ionic Hair Dryer", "dryer", (500, 2600), 800, "general", [("", "", 1.0)]),
        ("headphones", "主动降噪耳机", "Noise-cancelling Headphones", "headphones", (900, 2900), 300, "general", [("", "", 1.0)]),
        ("shaver", "往复式电动剃须刀", "Electric Foil Shaver", "shaver", (500, 2200), 350, "general", [("", "", 1.0)]),
        ("rice_cooker", "IH电饭煲", "IH Rice Cooker", "cooker", (900, 3600), 4500, "general", [("3L", "3 L", 1.0)]),
        ("smartwatch", "运动智能手表", "Sports Smartwatch", "watch", (900, 2800), 150, "general", [("", "", 1.0)]),
        ("kettle", "温控电热水壶", "Temperature-control Kettle", "kettle", (300, 900), 1300, "general", [("1.2L", "1.2 L", 1.0)]),
    ],
    "fashion": [
        ("scarf", "羊绒围巾", "Cashmere Scarf", "scarf", (600, 2600), 200, "general", [("", "", 1.0)]),
        ("sneakers", "复古运动鞋", "Retro Sneakers", "shoe", (500, 1600), 900, "general", [("42码", "EU 42", 1.0), ("38码", "EU 38", 1.0)]),
        ("backpack", "通勤双肩包", "Commuter Backpack", "bag", (400, 1500), 900, "general", [("", "", 1.0)]),
        ("sunglasses", "偏光太阳镜", "Polarised Sunglasses", "glasses", (500, 1800), 80, "general", [("", "", 1.0)]),
        ("sweater", "美利奴羊毛衫", "Merino Wool Sweater", "garment", (500, 1500), 350, "general", [("M", "M", 1.0), ("L", "L", 1.0)]),
        ("tshirt", "纯棉T恤 3件装", "Cotton T-shirts, 3 pack", "garment", (200, 450), 500, "general", [("M", "M", 1.0)]),
        ("jeans", "修身牛仔裤", "Slim-fit Jeans", "garment", (400, 1200), 700, "general", [("30", "W30", 1.0)]),
    ],
    "home": [
        ("pot", "不锈钢汤锅", "Stainless Steel Stock Pot", "pot", (400, 1600), 2500, "general", [("24cm", "24 cm", 1.0)]),
        ("knife", "大马士革主厨刀", "Damascus Chef's Knife", "knife", (500, 2000), 300, "general", [("20cm", "20 cm", 1.0)]),
        ("flask", "真空保温杯", "Vacuum Insulated Bottle", "flask", (150, 450), 350, "general", [("500ml", "500 ml", 1.0)]),
        ("candle", "香薰蜡烛", "Scented Candle", "candle", (150, 500), 450, "general", [("300g", "300 g", 1.0)]),
        ("bedding", "长绒棉四件套", "Long-staple Cotton Bedding Set", "box", (800, 2600), 3000, "general", [("1.8m", "King", 1.0)]),
        ("tableware", "骨瓷餐具 16件套", "Bone China Dinner Set, 16 pieces", "plate", (600, 2200), 6000, "general", [("", "", 1.0)]),
    ],
    "luxury": [
        ("handbag", "真皮手提包", "Leather Handbag", "bag", (3500, 16000), 900, "general", [("", "", 1.0)]),
        ("mech_watch", "自动机械腕表", "Automatic Mechanical Watch", "watch", (4500, 38000), 200, "high_end_watch", [("", "", 1.0)]),
        ("necklace", "18K金项链", "18K Gold Necklace", "jewel", (2500, 12000), 30, "jewelry", [("", "", 1.0)]),
        ("earrings", "海水珍珠耳环", "Saltwater Pearl Earrings", "jewel", (1500, 6000), 20, "jewelry", [("", "", 1.0)]),
        ("silk_scarf", "真丝方巾", "Silk Carré Scarf", "scarf", (1800, 4500), 100, "general", [("90cm", "90 cm", 1.0)]),
        ("wallet", "真皮长款钱包", "Leather Long Wallet", "bag", (2000, 6000), 250, "general", [("", "", 1.0)]),
        ("fragrance", "香精", "Parfum", "perfume", (1500, 4200), 400, "cosmetic", [("100ml", "100 ml", 1.0)]),
    ],
}

CATEGORY_NAMES = {"cosmetics": ("美妆个护", "Beauty"), "maternal_baby": ("母婴", "Mother & Baby"),
                  "health": ("营养保健", "Health"), "food": ("食品酒水", "Food & Drink"),
                  "electronics": ("数码家电", "Electronics"), "fashion": ("服饰鞋包", "Fashion"),
                  "home": ("家居厨具", "Home"), "luxury": ("奢品", "Luxury")}

COUNTRY_ZH = {"US": "美国", "JP": "日本", "KR": "韩国", "DE": "德国", "FR": "法国", "IT": "意大利", "GB": "英国",
              "AU": "澳大利亚", "NZ": "新西兰", "CH": "瑞士", "HK": "中国香港", "CA": "加拿大", "CN": "中国"}
COUNTRY_EN = {"US": "the United States", "JP": "Japan", "KR": "Korea", "DE": "Germany", "FR": "France",
              "IT": "Italy", "GB": "the United Kingdom", "AU": "Australia", "NZ": "New Zealand",
              "CH": "Switzerland", "HK": "Hong Kong", "CA": "Canada", "CN": "China"}

VARIANTS = [("经典", "Classic"), ("臻选", "Select"), ("焕活", "Renew"), ("轻盈", "Light"), ("丰润", "Rich"),
            ("有机", "Organic"), ("匠心", "Artisan"), ("极光", "Aurora"), ("晨露", "Morning Dew"), ("雪域", "Alpine")]

PALETTES = [("#f7e8e3", "#d9826a"), ("#e6f0f7", "#3f7cac"), ("#eef5e9", "#5b8c51"), ("#f5f0e6", "#b08a3e"),
            ("#efe9f5", "#7a5aa6"), ("#fdf1e1", "#d98b2b"), ("#e8f4f2", "#2f8f83"), ("#f3e9ec", "#a4475f"),
            ("#eceff1", "#455a64"), ("#fff4e6", "#c0552f")]


def price_in(cny, cur, rnd):
    """A plausible price in `cur` for roughly `cny`, rounded like a shop would (x.99, whole yen...)."""
    major = cny / CNY_PER[cur]
    if EXP.get(cur, 2) == 0:
        step = 100 if cur == "JPY" else 1000
        return max(step, int(round(major / step)) * step - (10 if cur == "JPY" else 0))
    whole = max(1, int(major))
    cents = rnd.choice([99, 95, 90, 0, 50])
    return whole * 100 + cents


def esc(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def shape(kind, c):
    """SVG fragment of a simple product illustration in a 400×400 box, main colour c."""
    w = "#ffffff"
    d = "#263238"
    s = {
        "jar": f'<rect x="120" y="170" width="160" height="130" rx="24" fill="{c}"/><rect x="112" y="140" width="176" height="42" rx="10" fill="{d}"/><rect x="140" y="205" width="120" height="60" rx="8" fill="{w}" opacity=".85"/>',
        "bottle": f'<rect x="150" y="140" width="100" height="180" rx="18" fill="{c}"/><rect x="178" y="95" width="44" height="50" rx="6" fill="{d}"/><rect x="165" y="200" width="70" height="70" rx="6" fill="{w}" opacity=".85"/>',
        "perfume": f'<rect x="130" y="170" width="140" height="150" rx="14" fill="{c}" opacity=".85"/><rect x="180" y="125" width="40" height="48" fill="{d}"/><rect x="165" y="95" width="70" height="34" rx="8" fill="{c}"/><circle cx="200" cy="245" r="34" fill="{w}" opacity=".6"/>',
        "tube": f'<path d="M150 110 h100 l-12 190 h-76 z" fill="{c}"/><rect x="168" y="298" width="64" height="34" rx="6" fill="{d}"/><rect x="165" y="160" width="70" height="80" rx="6" fill="{w}" opacity=".85"/>',
        "lipstick": f'<rect x="160" y="210" width="80" height="110" rx="8" fill="{d}"/><rect x="168" y="160" width="64" height="56" fill="#c9a227"/><path d="M172 160 v-60 l56 -25 v85 z" fill="{c}"/>',
        "box": f'<path d="M100 150 l100 -45 l100 45 v140 l-100 45 l-100 -45 z" fill="{c}"/><path d="M100 150 l100 45 l100 -45" fill="none" stroke="{w}" stroke-width="4"/><path d="M200 195 v140" stroke="{w}" stroke-width="4"/>',
        "can": f'<ellipse cx="200" cy="130" rx="80" ry="22" fill="{d}"/><rect x="120" y="130" width="160" height="180" fill="{c}"/><ellipse cx="200" cy="310" rx="80" ry="22" fill="{c}"/><rect x="135" y="185" width="130" height="70" rx="8" fill="{w}" opacity=".85"/>',
        "tin": f'<rect x="105" y="160" width="190" height="130" rx="16" fill="{c}"/><rect x="98" y="145" width="204" height="32" rx="10" fill="{d}"/><circle cx="200" cy="228" r="36" fill="{w}" opacity=".8"/>',
        "pouch": f'<path d="M130 120 h140 l15 200 q-85 25 -170 0 z" fill="{c}"/><rect x="130" y="112" width="140" height="16" fill="{d}"/><rect x="160" y="190" width="80" height="70" rx="8" fill="{w}" opacity=".85"/>',
        "pillbottle": f'<rect x="140" y="150" width="120" height="160" rx="16" fill="{c}"/><rect x="135" y="115" width="130" height="42" rx="8" fill="{w}" stroke="{d}" stroke-width="4"/><rect x="150" y="200" width="100" height="70" rx="6" fill="{w}" opacity=".85"/>',
        "babybottle": f'<rect x="150" y="170" width="100" height="150" rx="30" fill="{c}" opacity=".7"/><rect x="145" y="145" width="110" height="30" rx="6" fill="{d}"/><path d="M180 145 q20 -70 40 0 z" fill="#f2c18d"/>',
        "oil": f'<path d="M160 150 h80 v170 h-80 z" fill="{c}"/><path d="M175 150 l10 -50 h30 l10 50 z" fill="{c}"/><rect x="185" y="80" width="30" height="22" fill="{d}"/><rect x="170" y="210" width="60" height="60" fill="{w}" opacity=".85"/>',
        "wine": f'<path d="M170 160 q0 -30 15 -45 v-45 h30 v45 q15 15 15 45 v170 h-60 z" fill="{d}"/><rect x="170" y="220" width="60" height="60" fill="{c}"/>',
        "toothbrush": f'<rect x="180" y="150" width="40" height="180" rx="18" fill="{c}"/><rect x="188" y="70" width="24" height="85" rx="10" fill="{w}" stroke="{d}" stroke-width="3"/><circle cx="200" cy="220" r="9" fill="{w}"/>',
        "dryer": f'<circle cx="180" cy="170" r="70" fill="{c}"/><rect x="230" y="145" width="90" height="50" rx="10" fill="{c}"/><rect x="160" y="220" width="40" height="110" rx="14" fill="{d}"/><circle cx="180" cy="170" r="30" fill="{w}" opacity=".7"/>',
        "headphones": f'<path d="M120 230 q0 -130 80 -130 q80 0 80 130" fill="none" stroke="{d}" stroke-width="18"/><rect x="100" y="210" width="50" height="90" rx="20" fill="{c}"/><rect x="250" y="210" width="50" height="90" rx="20" fill="{c}"/>',
        "shaver": f'<rect x="160" y="150" width="80" height="180" rx="30" fill="{c}"/><rect x="150" y="95" width="100" height="60" rx="14" fill="{d}"/><circle cx="200" cy="230" r="12" fill="{w}"/>',
        "cooker": f'<rect x="105" y="150" width="190" height="160" rx="40" fill="{c}"/><path d="M105 180 q95 -60 190 0" fill="{d}"/><rect x="170" y="230" width="60" height="34" rx="6" fill="{w}" opacity=".85"/>',
        "watch": f'<rect x="175" y="70" width="50" height="260" rx="10" fill="{d}"/><circle cx="200" cy="200" r="68" fill="{c}"/><circle cx="200" cy="200" r="54" fill="{w}"/><path d="M200 200 v-38 M200 200 h28" stroke="{d}" stroke-width="5" stroke-linecap="round"/>',
        "kettle": f'<path d="M130 310 l20 -150 h100 l20 150 z" fill="{c}"/><path d="M250 180 q60 10 40 80" fill="none" stroke="{d}" stroke-width="12"/><rect x="120" y="305" width="160" height="20" rx="6" fill="{d}"/>',
        "scarf": f'<path d="M140 90 h120 v120 q-60 40 -120 0 z" fill="{c}"/><path d="M150 200 l-20 120 h50 l10 -110 M250 200 l20 120 h-50 l-10 -110" fill="{c}" opacity=".8"/>',
        "shoe": f'<path d="M90 280 q10 -90 60 -100 l40 30 q40 20 120 30 q30 10 30 40 z" fill="{c}"/><rect x="90" y="280" width="250" height="24" rx="10" fill="{w}" stroke="{d}" stroke-width="3"/>',
        "bag": f'<path d="M150 150 q0 -60 50 -60 q50 0 50 60" fill="none" stroke="{d}" stroke-width="12"/><rect x="110" y="150" width="180" height="170" rx="18" fill="{c}"/><rect x="185" y="190" width="30" height="18" rx="4" fill="#c9a227"/>',
        "glasses": f'<circle cx="140" cy="210" r="52" fill="{d}" opacity=".85"/><circle cx="260" cy="210" r="52" fill="{d}" opacity=".85"/><path d="M192 205 q8 -12 16 0" stroke="{c}" stroke-width="8" fill="none"/><path d="M88 200 l-30 -20 M312 200 l30 -20" stroke="{c}" stroke-width="8"/>',
        "garment": f'<path d="M140 100 l-60 50 l30 40 l30 -20 v160 h120 v-160 l30 20 l30 -40 l-60 -50 q-60 40 -120 0 z" fill="{c}"/>',
        "pot": f'<rect x="110" y="170" width="180" height="130" rx="16" fill="{c}"/><rect x="100" y="150" width="200" height="26" rx="10" fill="{d}"/><rect x="60" y="190" width="50" height="16" rx="6" fill="{d}"/><rect x="290" y="190" width="50" height="16" rx="6" fill="{d}"/>',
        "knife": f'<path d="M100 250 l200 -120 q20 30 -10 60 l-170 70 z" fill="#cfd8dc"/><rect x="60" y="250" width="70" height="30" rx="10" transform="rotate(-30 95 265)" fill="{c}"/>',
        "flask": f'<rect x="165" y="110" width="70" height="220" rx="30" fill="{c}"/><rect x="170" y="85" width="60" height="34" rx="8" fill="{d}"/><rect x="165" y="200" width="70" height="12" fill="{w}" opacity=".7"/>',
        "candle": f'<rect x="130" y="180" width="140" height="140" rx="14" fill="{c}"/><path d="M200 170 v-30" stroke="{d}" stroke-width="5"/><path d="M200 140 q-16 -25 0 -50 q16 25 0 50" fill="#f4b53f"/>',
        "plate": f'<circle cx="200" cy="210" r="110" fill="{w}" stroke="{c}" stroke-width="14"/><circle cx="200" cy="210" r="70" fill="none" stroke="{c}" stroke-width="4"/>',
        "jewel": f'<path d="M120 120 q80 160 160 0" fill="none" stroke="#c9a227" stroke-width="8"/><path d="M200 240 l-30 -40 h60 z" fill="{c}"/><circle cx="200" cy="195" r="10" fill="{w}"/>',
    }
    return s[kind]


def svg(product, shape_kind):
    h = int(hashlib.sha256(product["id"].encode()).hexdigest(), 16)
    bg, c = PALETTES[h % len(PALETTES)]
    brand = esc(product["brand"])
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 400 400" width="400" height="400" role="img" '
        f'aria-label="{esc(product["name_en"])}">'
        f'<defs><linearGradient id="g" x1="0" y1="0" x2="0" y2="1"><stop offset="0" stop-color="{bg}"/>'
        f'<stop offset="1" stop-color="#ffffff"/></linearGradient></defs>'
        f'<rect width="400" height="400" fill="url(#g)"/>'
        f'<ellipse cx="200" cy="345" rx="120" ry="14" fill="#000" opacity=".08"/>'
        f'{shape(shape_kind, c)}'
        f'<text x="200" y="382" text-anchor="middle" font-family="DejaVu Sans, Arial, sans-serif" font-size="18" '
        f'font-weight="600" fill="#37474f">{brand}</text>'
        f'</svg>\n'
    )


def main():
    rnd = random.Random(20261127)
    os.makedirs(IMG, exist_ok=True)
    for f in os.listdir(IMG):
        os.remove(os.path.join(IMG, f))
    products = []
    n = 0
    for cat, types in TYPES.items():
        brands = BRANDS[cat]
        for (tkey, tzh, ten, kind, (lo, hi), weight, tax, specs) in types:
            # Each type comes from several brands, in several variants.
            for brand in brands:
                reps = 1 if len(types) * len(brands) > 40 else 2
                for r in range(reps):
                    spec = specs[(n + r) % len(specs)]
                    variant = VARIANTS[(n * 7 + r) % len(VARIANTS)]
                    n += 1
                    pid = f"P{n:04d}"
                    en, zh, origin = brand
                    cny = rnd.uniform(lo, hi) * spec[2]
                    fulfil = "bonded" if rnd.random() < 0.6 else "direct_mail"
                    cur = CUR[origin]
                    # Some bonded stock is priced locally in CNY.
                    if fulfil == "bonded" and rnd.random() < 0.2:
                        cur = "CNY"
                    price = price_in(cny, cur, rnd)
                    tax_cat = tax
                    if tax == "cosmetic":
                        # High-end cosmetics: at least CNY 10 per ml/g or CNY 15 per piece.
                        tax_cat = "high_end_cosmetics" if cny >= 300 else "general"
                    stock = rnd.choice([0, 2, 5, 12, 40, 80, 150, 300, 500, 999])
                    name_zh = f"{zh} {variant[0]}{tzh}" + (f" {spec[0]}" if spec[0] else "")
                    name_en = f"{en} {variant[1]} {ten}" + (f", {spec[1]}" if spec[1] else "")
                    desc_zh = (f"{zh}（{COUNTRY_ZH[origin]}）{variant[0]}系列{tzh}。"
                               + ("保税仓发货，通常 3–5 天送达。" if fulfil == "bonded" else "海外直邮，通常 7–15 天送达。")
                               + "跨境商品，税费与汇率明细见下方到手价说明。")
                    desc_en = (f"{ten} from the {variant[1]} line by {en}, made in {COUNTRY_EN[origin]}. "
                               + ("Ships from a bonded warehouse in China, usually in 3–5 days. " if fulfil == "bonded"
                                  else "Ships directly from abroad, usually in 7–15 days. ")
                               + "Cross-border goods: see the landed-cost breakdown for tax.")
                    p = {
                        "id": pid,
                        "category": cat,
                        "type": tkey,
                        "brand": en,
                        "brand_zh": zh,
                        "origin": origin,
                        "currency": cur,
                        "price_minor": price,
                        "fulfilment": fulfil,
                        "tax_category": tax_cat,
                        "weight_grams": weight,
                        "stock": stock,
                        "name_zh": name_zh,
                        "name_en": name_en,
                        "description_zh": desc_zh,
                        "description_en": desc_en,
                        "image": f"{pid}.svg",
                    }
                    products.append(p)
                    with open(os.path.join(IMG, p["image"]), "w", encoding="utf-8") as f:
                        f.write(svg(p, kind))
    with open(os.path.join(OUT, "products.json"), "w", encoding="utf-8") as f:
        json.dump({"generated_by": "scripts/gen-catalog.py", "products": products}, f, ensure_ascii=False, indent=1)
        f.write("\n")
    cats = {}
    origins = set()
    for p in products:
        cats[p["category"]] = cats.get(p["category"], 0) + 1
        origins.add(p["origin"])
    print(f"{len(products)} products, {len(cats)} categories {cats}, {len(origins)} origins {sorted(origins)}")


if __name__ == "__main__":
    main()
