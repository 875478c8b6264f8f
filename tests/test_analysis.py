"""The default analyzer's Python fast path gives exactly tantivy's terms, or steps aside."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from strongroom.engine import analysis
from strongroom.engine.analysis import _cjk_terms, analyzer, cjk_bigram_text


def tantivy_terms(text: str) -> list[str]:
    return analysis._built("default").analyze(cjk_bigram_text(text))


# Pieces of text a fast path could get wrong: ASCII words of every case (and around the 255-byte
# limit), digits, separators, CJK ideographs, kana, radicals and other CJK symbols (not letters),
# full-width forms (NFKC), accented Latin (tantivy folds it), underscores, combining marks.
PIECES = st.sampled_from([
    "abc", "ABC", "Zhang", "x1", "2024", "_", "a_b", " ", "\n", "-", ",", ".", "!", "，", "。", "、", "《", "》",
    "“", "”", "—", "…", "·", "\u3000", "张", "伟", "中国", "湖北省荆州市", "号", "の", "カタカナ", "・", "⺀", "⿰",
    "ＡＢＣ", "１２３", "ｶ", "é", "Ärger", "straße", "İ", "e\u0301", "가나", "𠀀", "\u4e00", "\u9fff", "a" * 254,
    "b" * 255, "c" * 256, "٣", "Ⅻ", "²", "ǅ",
])


@settings(max_examples=600, deadline=None)
@given(st.lists(PIECES, max_size=12).map("".join))
def test_fast_path_equals_tantivy_or_steps_aside(text: str) -> None:
    fast = _cjk_terms(text)
    if fast is not None:
        assert fast == tantivy_terms(text)
    assert analyzer("default").terms(text) == tantivy_terms(text)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40))
def test_any_text(text: str) -> None:
    assert analyzer("default").terms(text) == tantivy_terms(text)


def test_the_fast_path_takes_typical_records() -> None:
    # Not a timing test: it checks the common case does not fall back (which would only be slower).
    for text in ("张伟", "湖北省荆州市关岭路266号", "2017年1月27日补领居民身份证，原证件遗失。", "Room 5B, Tower 2"):
        assert _cjk_terms(text) is not None
    assert _cjk_terms("Ärger") is None  # tantivy folds it
    assert _cjk_terms("⿰") is None  # a CJK symbol, not a letter


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(max_codepoint=0x7F), max_size=40),
       st.text(alphabet="中文\uff21\uff41 ", max_size=6))
def test_bigram_text_returns_ascii_unchanged_and_rewrites_the_rest(ascii_text: str, other: str) -> None:
    # ASCII (every blind token string) skips both patterns; anything else still meets them.
    assert cjk_bigram_text(ascii_text) is ascii_text
    mixed = ascii_text + other
    folded = analysis.unicodedata.normalize("NFKC", mixed) if analysis._NEEDS_WIDTH_FOLD.search(mixed) else mixed
    assert cjk_bigram_text(mixed) == (analysis._CJK_RUN.sub(analysis._bigrams, folded)
                                      if analysis._HAS_CJK.search(folded) else folded)
