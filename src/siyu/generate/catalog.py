"""The vocabulary of the generated brand "Demo Tea": cities, names, products and rates.

Everything here is plain data; the generators draw from it with seeded numpy generators, so a
change to any list changes the output of every seed (the determinism test pins the shape only).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

BRAND = "Demo Tea"

# (code prefix, city, region). Regions follow the usual Chinese retail split of a national chain.
CITIES: tuple[tuple[str, str, str], ...] = (
    ("SH", "上海", "华东"),
    ("HZ", "杭州", "华东"),
    ("NJ", "南京", "华东"),
    ("SZH", "苏州", "华东"),
    ("BJ", "北京", "华北"),
    ("TJ", "天津", "华北"),
    ("GZ", "广州", "华南"),
    ("SZ", "深圳", "华南"),
    ("CD", "成都", "西南"),
    ("CQ", "重庆", "西南"),
    ("WH", "武汉", "华中"),
    ("CS", "长沙", "华中"),
)
# How stores spread over the cities: the first-tier cities carry most of them.
CITY_WEIGHTS: tuple[float, ...] = (
    0.18,
    0.09,
    0.07,
    0.06,
    0.14,
    0.05,
    0.09,
    0.10,
    0.08,
    0.05,
    0.05,
    0.04,
)
MALLS: tuple[str, ...] = (
    "万象城",
    "太古里",
    "国金中心",
    "来福士",
    "大悦城",
    "万达广场",
    "银泰",
    "印象城",
    "龙湖天街",
    "K11",
    "恒隆广场",
    "新天地",
)
# The brand's own online "stores": orders and members from these channels carry these codes.
ONLINE_STORES: tuple[tuple[str, str, str], ...] = (
    ("MP001", "Demo Tea 微信小程序商城", "miniprogram"),
    ("TM001", "Demo Tea 天猫旗舰店", "tmall"),
    ("DY001", "Demo Tea 抖音官方旗舰店", "douyin"),
)

SURNAMES: tuple[str, ...] = (
    "王",
    "李",
    "张",
    "刘",
    "陈",
    "杨",
    "黄",
    "赵",
    "吴",
    "周",
    "徐",
    "孙",
    "马",
    "朱",
    "胡",
    "郭",
    "何",
    "林",
    "高",
    "罗",
    "郑",
    "梁",
    "谢",
    "宋",
    "唐",
    "许",
    "韩",
    "冯",
    "邓",
    "曹",
)
GIVEN_CHARS: tuple[str, ...] = (
    "芳",
    "娜",
    "敏",
    "静",
    "丽",
    "婷",
    "雪",
    "琳",
    "颖",
    "欣",
    "悦",
    "萱",
    "涵",
    "晨",
    "宇",
    "浩",
    "杰",
    "磊",
    "伟",
    "强",
    "明",
    "华",
    "俊",
    "洋",
    "佳",
    "怡",
    "思",
    "雨",
    "梓",
    "子",
)

CHANNELS: tuple[str, ...] = ("pos", "miniprogram", "wecom", "tmall", "douyin")
# Share of members registering through each channel (same order as CHANNELS).
CHANNEL_WEIGHTS: tuple[float, ...] = (0.45, 0.28, 0.10, 0.11, 0.06)

GENDERS: tuple[str, ...] = ("F", "M", "U")
GENDER_WEIGHTS: tuple[float, ...] = (0.68, 0.27, 0.05)


@dataclass(frozen=True)
class Product:
    sku: str
    category: str
    price_cents: int


# A tea-and-beauty lifestyle brand: cheap drinks bought often, gift boxes and skincare rarely.
PRODUCTS: tuple[Product, ...] = (
    Product("TEA-OOLONG-250", "tea", 12800),
    Product("TEA-LONGJING-125", "tea", 26800),
    Product("TEA-PUER-357", "tea", 39800),
    Product("TEA-JASMINE-100", "tea", 6800),
    Product("DRK-MILKTEA-L", "drinks", 1900),
    Product("DRK-FRUITTEA-L", "drinks", 2200),
    Product("DRK-LEMON-M", "drinks", 1500),
    Product("DRK-MATCHA-L", "drinks", 2600),
    Product("SNK-MOONCAKE-6", "snacks", 16800),
    Product("SNK-COOKIE-12", "snacks", 5800),
    Product("GFT-BOX-SPRING", "gift", 49800),
    Product("GFT-BOX-NEWYEAR", "gift", 68800),
    Product("BTY-MASK-5", "beauty", 9900),
    Product("BTY-SERUM-30", "beauty", 32900),
    Product("BTY-TONER-150", "beauty", 15900),
    Product("BTY-LIPBALM", "beauty", 5900),
    Product("HOM-CUPSET", "home", 23800),
    Product("HOM-CANDLE", "home", 12900),
)
# Relative popularity of each product line (same order as PRODUCTS).
PRODUCT_WEIGHTS: tuple[float, ...] = (
    4,
    2,
    1,
    5,
    14,
    12,
    9,
    8,
    2,
    4,
    1,
    1,
    5,
    2,
    3,
    4,
    1,
    2,
)

# Placeholder phones cashiers type when a customer will not give one; each is shared by dozens
# of member numbers, which is exactly what OneID must refuse to merge on (DESIGN §4.3).
PLACEHOLDER_PHONES: tuple[str, ...] = ("13800000000", "18888888888", "13912345678")

EVENT_TYPES: tuple[str, ...] = (
    "page_view",
    "sign_in",
    "coupon_view",
    "favourite",
    "share",
    "add_to_cart",
)
# Typical mini-program mix: browsing dominates, sharing is rare.
EVENT_WEIGHTS: tuple[float, ...] = (0.55, 0.15, 0.11, 0.08, 0.05, 0.06)
PAGES: tuple[str, ...] = (
    "/pages/index/index",
    "/pages/product/detail",
    "/pages/member/center",
    "/pages/coupon/list",
    "/pages/store/nearby",
)
COUPONS: tuple[str, ...] = ("CP-NEW-20", "CP-618-50", "CP-1111-100", "CP-BDAY-30", "CP-FREESHIP")
SHARE_TARGETS: tuple[str, ...] = ("friend", "group", "moments")

# Chinese New Year's Day; sales climb in the two weeks before it (gift boxes, tea).
CNY_DATES: tuple[date, ...] = (
    date(2023, 1, 22),
    date(2024, 2, 10),
    date(2025, 1, 29),
    date(2026, 2, 17),
    date(2027, 2, 6),
    date(2028, 1, 26),
)
