"""The deterministic synthetic data set behind ``strongroom demo``.

Every person is fictional. Names and street names come from Faker's zh_CN providers on a private,
seeded instance; everything else comes from a seeded ``random.Random``. Ages are computed against
the fixed ``REFERENCE_DATE``, never against the clock, so the same ``(count, seed)`` yields the same
documents on every run and machine (for a given Faker release), and the documents are generated
strictly in sequence, so the first N documents of any larger count equal the documents of count=N.

No I/O and no printing here: the caller drives the generator and shows progress.
"""

from __future__ import annotations

import datetime
import random
from collections import OrderedDict
from collections.abc import Callable, Iterator
from itertools import accumulate
from typing import Any, NamedTuple

from faker import Faker

from strongroom.pii import national_id_check_char

__all__ = [
    "PROVINCES",
    "REFERENCE_DATE",
    "REGIONS",
    "RESIDENTS_BODY",
    "RESIDENTS_INDEX",
    "Region",
    "generate_residents",
]

RESIDENTS_INDEX = "residents"

RESIDENTS_BODY: dict[str, Any] = {
    "settings": {"index": {"number_of_shards": 1, "number_of_replicas": 0}},
    "mappings": {
        "dynamic": "strict",
        "properties": {
            # Personal values are indexed only as keyed tokens (docs/protection.md); region and gender are not
            # identifying on their own and stay plain for filters and aggregations.
            "name": {"type": "text", "protect": "blind"},
            "national_id": {"type": "keyword", "protect": "blind", "blind_prefixes": [6]},
            "phone": {"type": "keyword", "protect": "blind", "blind_prefixes": [3, 7]},
            "address": {"type": "text", "protect": "blind"},
            "birthplace": {"type": "keyword", "fields": {"text": {"type": "text"}}},
            "birth_date": {"type": "date", "format": "strict_date", "protect": "blind"},
            "gender": {"type": "keyword"},
            "case_notes": {"type": "text", "protect": "blind"},
        },
    },
}

# Ages (1-95) are measured on this date; it is fixed so that the data set never drifts with the clock.
REFERENCE_DATE = datetime.date(2024, 12, 31)
_MIN_AGE = 1
_MAX_AGE = 95
_ADULT_AGE = 18
# Case-note events are dated no earlier than this (records before it were not digitised).
_EARLIEST_EVENT = datetime.date(2000, 1, 1)

# Provincial-level divisions by the first two digits of the region code (GB/T 2260).
PROVINCES: dict[str, str] = {
    "11": "北京市",
    "12": "天津市",
    "13": "河北省",
    "14": "山西省",
    "15": "内蒙古自治区",
    "21": "辽宁省",
    "22": "吉林省",
    "23": "黑龙江省",
    "31": "上海市",
    "32": "江苏省",
    "33": "浙江省",
    "34": "安徽省",
    "35": "福建省",
    "36": "江西省",
    "37": "山东省",
    "41": "河南省",
    "42": "湖北省",
    "43": "湖南省",
    "44": "广东省",
    "45": "广西壮族自治区",
    "46": "海南省",
    "50": "重庆市",
    "51": "四川省",
    "52": "贵州省",
    "53": "云南省",
    "54": "西藏自治区",
    "61": "陕西省",
    "62": "甘肃省",
    "63": "青海省",
    "64": "宁夏回族自治区",
    "65": "新疆维吾尔自治区",
}


class Region(NamedTuple):
    """One place of household registration: its 6-digit GB/T 2260 code and its name.

    ``parent`` names the prefecture-level city for a district that lies in one (used only to
    write addresses); it is empty for prefecture-level cities, county-level cities and the
    districts of the four municipalities.
    """

    code: str
    name: str
    parent: str = ""


# Real region codes with their names. Faker's ssn.zh_CN provider ships the codes (from the 2015
# National Bureau of Statistics list) but not the names, so the pairs are written out here; every
# code below appears in that list (the test suite checks it). Only well-known, long-stable pairs are
# included; names are unique within the table, so a birthplace determines its code and vice versa.
REGIONS: tuple[Region, ...] = (
    # 北京市
    Region("110101", "东城区"),
    Region("110102", "西城区"),
    Region("110105", "朝阳区"),
    Region("110106", "丰台区"),
    Region("110108", "海淀区"),
    Region("110112", "通州区"),
    Region("110114", "昌平区"),
    # 天津市
    Region("120101", "和平区"),
    Region("120102", "河东区"),
    Region("120104", "南开区"),
    # 河北省
    Region("130100", "石家庄市"),
    Region("130200", "唐山市"),
    Region("130300", "秦皇岛市"),
    Region("130400", "邯郸市"),
    Region("130600", "保定市"),
    Region("131000", "廊坊市"),
    # 山西省
    Region("140100", "太原市"),
    Region("140200", "大同市"),
    Region("140800", "运城市"),
    # 内蒙古自治区
    Region("150100", "呼和浩特市"),
    Region("150200", "包头市"),
    Region("150600", "鄂尔多斯市"),
    # 辽宁省
    Region("210100", "沈阳市"),
    Region("210200", "大连市"),
    Region("210300", "鞍山市"),
    Region("210600", "丹东市"),
    Region("210700", "锦州市"),
    # 吉林省
    Region("220100", "长春市"),
    Region("220200", "吉林市"),
    Region("222400", "延边朝鲜族自治州"),
    # 黑龙江省
    Region("230100", "哈尔滨市"),
    Region("230200", "齐齐哈尔市"),
    Region("230600", "大庆市"),
    Region("231000", "牡丹江市"),
    # 上海市
    Region("310101", "黄浦区"),
    Region("310104", "徐汇区"),
    Region("310105", "长宁区"),
    Region("310106", "静安区"),
    Region("310107", "普陀区"),
    Region("310110", "杨浦区"),
    Region("310112", "闵行区"),
    Region("310115", "浦东新区"),
    # 江苏省
    Region("320100", "南京市"),
    Region("320200", "无锡市"),
    Region("320300", "徐州市"),
    Region("320400", "常州市"),
    Region("320500", "苏州市"),
    Region("320582", "张家港市"),
    Region("320583", "昆山市"),
    Region("320600", "南通市"),
    Region("321000", "扬州市"),
    # 浙江省
    Region("330100", "杭州市"),
    Region("330200", "宁波市"),
    Region("330300", "温州市"),
    Region("330400", "嘉兴市"),
    Region("330600", "绍兴市"),
    Region("330700", "金华市"),
    Region("330782", "义乌市"),
    Region("331000", "台州市"),
    # 安徽省
    Region("340100", "合肥市"),
    Region("340200", "芜湖市"),
    Region("340300", "蚌埠市"),
    Region("340800", "安庆市"),
    # 福建省
    Region("350100", "福州市"),
    Region("350200", "厦门市"),
    Region("350500", "泉州市"),
    Region("350582", "晋江市"),
    Region("350600", "漳州市"),
    # 江西省
    Region("360100", "南昌市"),
    Region("360400", "九江市"),
    Region("360700", "赣州市"),
    # 山东省
    Region("370100", "济南市"),
    Region("370200", "青岛市"),
    Region("370300", "淄博市"),
    Region("370600", "烟台市"),
    Region("370700", "潍坊市"),
    Region("371300", "临沂市"),
    # 河南省
    Region("410100", "郑州市"),
    Region("410200", "开封市"),
    Region("410300", "洛阳市"),
    Region("411300", "南阳市"),
    Region("411600", "周口市"),
    # 湖北省
    Region("420100", "武汉市"),
    Region("420500", "宜昌市"),
    Region("420600", "襄阳市"),
    Region("421000", "荆州市"),
    # 湖南省
    Region("430100", "长沙市"),
    Region("430200", "株洲市"),
    Region("430400", "衡阳市"),
    Region("430600", "岳阳市"),
    # 广东省
    Region("440100", "广州市"),
    Region("440303", "罗湖区", "深圳市"),
    Region("440304", "福田区", "深圳市"),
    Region("440305", "南山区", "深圳市"),
    Region("440306", "宝安区", "深圳市"),
    Region("440307", "龙岗区", "深圳市"),
    Region("440400", "珠海市"),
    Region("440500", "汕头市"),
    Region("440600", "佛山市"),
    Region("441900", "东莞市"),
    Region("442000", "中山市"),
    # 广西壮族自治区
    Region("450100", "南宁市"),
    Region("450200", "柳州市"),
    Region("450300", "桂林市"),
    # 海南省
    Region("460100", "海口市"),
    Region("460200", "三亚市"),
    # 重庆市
    Region("500101", "万州区"),
    Region("500103", "渝中区"),
    Region("500106", "沙坪坝区"),
    Region("500112", "渝北区"),
    # 四川省
    Region("510100", "成都市"),
    Region("510300", "自贡市"),
    Region("510700", "绵阳市"),
    Region("511300", "南充市"),
    Region("511500", "宜宾市"),
    # 贵州省
    Region("520100", "贵阳市"),
    Region("520300", "遵义市"),
    # 云南省
    Region("530100", "昆明市"),
    Region("530300", "曲靖市"),
    # 西藏自治区
    Region("540100", "拉萨市"),
    # 陕西省
    Region("610100", "西安市"),
    Region("610300", "宝鸡市"),
    Region("610400", "咸阳市"),
    Region("610800", "榆林市"),
    # 甘肃省
    Region("620100", "兰州市"),
    Region("620500", "天水市"),
    # 青海省
    Region("630100", "西宁市"),
    # 宁夏回族自治区
    Region("640100", "银川市"),
    # 新疆维吾尔自治区
    Region("650100", "乌鲁木齐市"),
    Region("650200", "克拉玛依市"),
)

_REGIONS_BY_PROVINCE: dict[str, tuple[Region, ...]] = {
    prefix: tuple(r for r in REGIONS if r.code[:2] == prefix) for prefix in PROVINCES
}

# Mobile prefixes in wide public use (China Mobile, China Unicom, China Telecom, China Broadnet).
_MOBILE_PREFIXES: tuple[str, ...] = (
    "130", "131", "132", "133", "134", "135", "136", "137", "138", "139",
    "150", "151", "152", "153", "155", "156", "157", "158", "159",
    "173", "175", "176", "177", "178",
    "180", "181", "182", "183", "184", "185", "186", "187", "188", "189",
    "191", "193", "195", "196", "198", "199",
)  # fmt: skip

# Places that case notes mention alongside a district.
_SPOTS: tuple[str, ...] = (
    "幸福小区", "阳光花园", "人民路", "建设路", "中山路", "解放路", "火车站", "长途汽车站",
    "农贸市场", "地铁站", "人民公园", "步行街", "万达广场", "城中村", "工业园区", "第一人民医院",
    "实验小学", "家乐福超市", "网吧", "KTV", "停车场", "菜市场", "汽配城", "建材市场",
)  # fmt: skip

_AMOUNTS: tuple[int, ...] = (
    300, 500, 800, 1200, 1500, 2000, 2600, 3000, 4800, 5000, 8000, 12000, 20000, 35000, 68000,
)  # fmt: skip

# (minimum age at the time of the event, template). Placeholders: {date} a full date, {month} a
# year and month, {district} a place from REGIONS, {district2} another one, {spot} a place from
# _SPOTS, {amount} a sum of money in yuan.
_NOTE_TEMPLATES: tuple[tuple[int, str], ...] = (
    (16, "{date}因邻里纠纷报警，经社区民警调解已处理。"),
    (0, "户籍迁入{district}。"),
    (16, "申请换领居民身份证。"),
    (0, "{date}申领居民身份证。"),
    (16, "{date}补领居民身份证，原证件遗失。"),
    (16, "{date}申领临时居民身份证。"),
    (0, "{date}户籍由{district}迁入{district2}。"),
    (0, "{date}办理户籍迁出手续，迁往{district}。"),
    (18, "{date}因家庭纠纷报警，民警到场劝解后双方和解。"),
    (12, "{date}在{district}{spot}被盗电动自行车一辆，已立案侦查。"),
    (12, "{date}报称手机在{spot}被盗，民警已调取监控。"),
    (18, "{date}报称家中被盗，损失现金约{amount}元，已立案侦查。"),
    (18, "{date}作为证人协助调查{district}一起盗窃案件。"),
    (12, "{date}在{spot}遗失钱包，已登记备案。"),
    (12, "{date}在{district}{spot}拾得钱包一个，已交派出所。"),
    (18, "{date}因交通事故纠纷报警，已移交交警部门处理。"),
    (18, "{date}因停车纠纷与他人发生口角，民警到场调解。"),
    (18, "{date}因房屋租赁纠纷报警，经调解双方达成协议。"),
    (18, "{date}因物业纠纷报警，已告知通过民事诉讼途径解决。"),
    (18, "{date}因工资拖欠纠纷到派出所求助，已引导至劳动监察部门。"),
    (18, "{date}因宠物伤人纠纷报警，经调解已赔偿。"),
    (16, "{date}举报{spot}附近噪音扰民，已责令整改。"),
    (18, "{date}遭遇电信诈骗，损失人民币{amount}元，已立案。"),
    (16, "{date}网购被骗{amount}元，已录入反诈系统。"),
    (18, "{date}因酒后滋事被{district}公安机关予以警告。"),
    (18, "{date}申请开具无犯罪记录证明，已出具。"),
    (0, "{date}申请办理普通护照。"),
    (0, "{date}申请办理往来港澳通行证。"),
    (16, "{date}在{district}办理居住证。"),
    (16, "{month}起暂住{district}{spot}附近，已办理居住登记。"),
    (0, "{date}办理户口簿补领。"),
    (18, "{date}申请变更户籍登记项目（文化程度）。"),
    (18, "{date}因婚姻登记申请户籍信息核查。"),
    (0, "{date}办理身份证异地受理，受理地{district}。"),
    (60, "{date}走失后由{district}派出所民警寻回，已通知家属。"),
    (18, "{date}驾驶机动车在{spot}与他人发生纠纷，已调解。"),
    (18, "{month}曾在{district}从事个体经营。"),
    (16, "{date}在{spot}被扒窃现金{amount}元，已报案。"),
)

# Weighted so that one sentence is most common and three are rare.
_SENTENCE_COUNTS: tuple[int, ...] = (1, 1, 1, 2, 2, 3)


def _shift_years(day: datetime.date, years: int) -> datetime.date:
    """``day`` moved by whole years; 29 February becomes 28 February in a common year."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


# Birth dates are drawn uniformly from the range that makes the age on REFERENCE_DATE 1-95.
_BIRTH_FIRST = _shift_years(REFERENCE_DATE, -(_MAX_AGE + 1)) + datetime.timedelta(days=1)
_BIRTH_LAST = _shift_years(REFERENCE_DATE, -_MIN_AGE)


def _chinese_date(day: datetime.date) -> str:
    return f"{day.year}年{day.month}月{day.day}日"


def _random_date(rng: random.Random, first: datetime.date, last: datetime.date) -> datetime.date:
    return datetime.date.fromordinal(rng.randint(first.toordinal(), last.toordinal()))


def _case_notes(rng: random.Random, birth: datetime.date, home: Region) -> str:
    """One to three sentences of registry-style notes, in chronological order."""
    age = _age_on(birth, REFERENCE_DATE)
    templates = [t for t in _NOTE_TEMPLATES if t[0] <= age]
    events = []
    for min_age, template in rng.sample(templates, rng.choice(_SENTENCE_COUNTS)):
        first = max(_EARLIEST_EVENT, _shift_years(birth, min_age))
        day = _random_date(rng, first, REFERENCE_DATE)
        # Half the time the note names a place in the home province, otherwise anywhere.
        if rng.random() < 0.5:
            district = rng.choice(_REGIONS_BY_PROVINCE[home.code[:2]]).name
        else:
            district = rng.choice(REGIONS).name
        district2 = rng.choice(REGIONS).name
        while district2 == district:
            district2 = rng.choice(REGIONS).name
        sentence = template.format(
            date=_chinese_date(day),
            month=f"{day.year}年{day.month}月",
            district=district,
            district2=district2,
            spot=rng.choice(_SPOTS),
            amount=rng.choice(_AMOUNTS),
        )
        events.append((day, sentence))
    events.sort()
    return "".join(sentence for _, sentence in events)


def _age_on(birth: datetime.date, day: datetime.date) -> int:
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def _national_id(
    rng: random.Random, region: Region, birth: datetime.date, male: bool, issued: set[str]
) -> str:
    """A fresh id (not in ``issued``, which it joins) for a person born in ``region`` on ``birth``."""
    head = region.code + birth.strftime("%Y%m%d")
    while True:
        # Three-digit sequence code; its last digit is odd for men and even for women (never 000).
        sequence = rng.randrange(0, 500) * 2 + 1 if male else rng.randrange(1, 500) * 2
        first17 = f"{head}{sequence:03d}"
        check = national_id_check_char(first17)
        # The product brief wants all-digit ids, so a check character of X means drawing again;
        # so does a clash with an earlier id (about two in 100,000 otherwise).
        if check != "X" and first17 not in issued:
            issued.add(first17)
            return first17 + check


def _address(rng: random.Random, region: Region, street: str) -> str:
    province = PROVINCES[region.code[:2]]
    # For the four municipalities the province name is the city name, e.g. 北京市朝阳区.
    number = rng.randint(1, 999)
    parts = [province, region.parent, region.name, street, f"{number}号"]
    style = rng.random()
    if style < 0.6:
        building, unit = rng.randint(1, 30), rng.randint(1, 6)
        parts.append(f"{building}栋{unit}单元{rng.randint(1, 33)}{rng.randint(1, 4):02d}室")
    elif style < 0.8:
        parts.append(f"{rng.randint(1, 20)}{rng.randint(1, 12):02d}室")
    return "".join(parts)


def _phone(rng: random.Random) -> str:
    return rng.choice(_MOBILE_PREFIXES) + f"{rng.randrange(100_000_000):08d}"


def _surname_sampler(fake: Faker) -> Callable[[], str]:
    """A drop-in for ``fake.last_name`` that returns the very same names, about 20 times faster.

    Faker draws a weighted surname with ``random.choices(names, weights)`` on its private
    ``Random``, re-accumulating the ~400 weights on every call; this does the same draw with the
    weights accumulated once, so it consumes the same random numbers and yields the same names
    (the test suite checks the equivalence). Falls back to ``fake.last_name`` if the provider's
    data is not the weighted table this relies on.
    """
    last_name = fake.last_name
    provider = getattr(last_name, "__self__", None)
    table = getattr(provider, "last_names", None)
    if not isinstance(table, OrderedDict) or not getattr(provider, "__use_weighting__", False):
        return last_name
    names = tuple(table)
    cum_weights = list(accumulate(table.values()))
    choices = provider.generator.random.choices
    return lambda: choices(names, cum_weights=cum_weights)[0]


def generate_residents(count: int, *, seed: int = 2022) -> Iterator[tuple[str, dict[str, str]]]:
    """Yield ``count`` synthetic residents as ``(doc_id, document)``, ids "r0000001", "r0000002", ...

    Deterministic in ``(count, seed)``; the first N documents do not depend on ``count``.
    Raises ValueError at once (not on first iteration) for a negative or non-integer count or seed.
    """
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise ValueError("count must be a non-negative integer")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError("seed must be an integer")
    return _generate(count, seed)


def _generate(count: int, seed: int) -> Iterator[tuple[str, dict[str, str]]]:
    fake = Faker("zh_CN")
    fake.seed_instance(seed)
    last_name = _surname_sampler(fake)
    first_name_male = fake.first_name_male
    first_name_female = fake.first_name_female
    # Street names as "{city_name}{street_suffix}" (哈尔滨路, 南京街): one of Faker's two street-name
    # formats, without the template parser; the other one ("{last_name}{street_suffix}") gives
    # implausible one-character names such as 宋路.
    city_name = fake.city_name
    street_suffix = fake.street_suffix
    # A separate stream for everything else; seeded from a string so that it does not replay Faker's.
    rng = random.Random(f"strongroom.demo:{seed}")
    issued: set[str] = set()  # ids handed out so far (first 17 digits), to keep them unique

    for number in range(1, count + 1):
        male = rng.random() < 0.5
        birth = _random_date(rng, _BIRTH_FIRST, _BIRTH_LAST)
        home = rng.choice(REGIONS)
        if rng.random() < 0.5:
            lives = rng.choice(_REGIONS_BY_PROVINCE[home.code[:2]])
        else:
            lives = rng.choice(REGIONS)
        name = last_name() + (first_name_male() if male else first_name_female())
        document = {
            "name": name,
            "gender": "男" if male else "女",
            "birth_date": birth.isoformat(),
            "birthplace": home.name,
            "national_id": _national_id(rng, home, birth, male, issued),
            "phone": _phone(rng),
            "address": _address(rng, lives, city_name() + street_suffix()),
            "case_notes": _case_notes(rng, birth, home),
        }
        yield f"r{number:07d}", document
