"""Text analysis: the analyzers a `text` field can use, identical at index and at query time.

The default analyzer handles Chinese as Elasticsearch's `cjk` analyzer does: runs of CJK
characters become overlapping bigrams (a lone character stays a unigram), Latin words are
lowercased and folded to ASCII, digits are kept. tantivy has no bigram filter, so a cheap Python
step rewrites each CJK run into its space-separated bigrams and tantivy's own tokenizer does the
rest; queries go through exactly the same two steps, so index and query terms always agree.

Analyzers are named and registered per tantivy index, so a word-segmenting analyzer can be added
later as one more entry here.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import tantivy

CJK_CLASS = r"\u2E80-\u2FDF\u3040-\u30FF\u3100-\u312F\u3190-\u31BF\u31F0-\u31FF\u3400-\u4DBF\u4E00-\u9FFF" \
            r"\uAC00-\uD7AF\uF900-\uFAFF\U00020000-\U0002FA1F"
_CJK_RUN = re.compile(f"[{CJK_CLASS}]+")
_HAS_CJK = re.compile(f"[{CJK_CLASS}]")
_NEEDS_WIDTH_FOLD = re.compile(r"[\uFF00-\uFFEF]")  # full-width ASCII and half-width katakana
MAX_TOKEN_CHARS = 255


def _bigrams(match: re.Match[str]) -> str:
    run = match.group(0)
    if len(run) == 1:
        return f" {run} "
    return " " + " ".join(run[i:i + 2] for i in range(len(run) - 1)) + " "


def cjk_bigram_text(text: str) -> str:
    """The text with every CJK run replaced by its overlapping bigrams, space separated."""
    if text.isascii():  # O(1) in CPython; both patterns below are non-ASCII (blind tokens are ASCII)
        return text
    if _NEEDS_WIDTH_FOLD.search(text):
        text = unicodedata.normalize("NFKC", text)  # Elasticsearch's cjk_width
    if not _HAS_CJK.search(text):
        return text
    return _CJK_RUN.sub(_bigrams, text)


_RUNS = re.compile(f"([{CJK_CLASS}]+)|[^{CJK_CLASS}]+")
_ASCII_WORD = re.compile(r"[A-Za-z0-9]+")
# Punctuation common in Chinese text: neither letter nor number in any Unicode version, so it only
# separates words, in Python as in tantivy's regex.
_SEPARATORS = str.maketrans("", "", "\u3000\u3001\u3002\u300a\u300b\u3008\u3009\u300c\u300d\u300e\u300f"
                                    "\u3010\u3011\u2014\u2026\u00b7\u2018\u2019\u201c\u201d")


def _cjk_terms(text: str) -> list[str] | None:
    """The default analyzer's terms computed in Python, where that is exactly what tantivy would give:
    CJK runs made only of letters (bigrams), ASCII words (lowercased; 255 bytes or longer dropped, as
    remove_long does) and separators. None for anything else (a non-ASCII Latin word needs tantivy's
    lowercasing and ASCII folding; a CJK symbol is no word at all): the caller then asks tantivy.
    About 3× faster than the round trip through tantivy, and ingest analyses every protected text."""
    if _NEEDS_WIDTH_FOLD.search(text):
        text = unicodedata.normalize("NFKC", text)
    out: list[str] = []
    for match in _RUNS.finditer(text):
        run = match.group(1)
        if run is None:
            piece = match.group(0)
            if not piece.isascii() and not piece.translate(_SEPARATORS).isascii():
                return None
            out.extend([w.lower() for w in _ASCII_WORD.findall(piece) if len(w) < MAX_TOKEN_CHARS])
        elif not run.isalpha():
            return None
        elif len(run) == 1:
            out.append(run)
        else:
            out.extend([run[i:i + 2] for i in range(len(run) - 1)])
    return out


@dataclass(frozen=True)
class Analyzer:
    name: str
    tantivy_name: str
    build: Callable[[], tantivy.TextAnalyzer]
    pre: Callable[[str], str] | None = None

    @property
    def _analyzer(self) -> tantivy.TextAnalyzer:
        return _built(self.name)

    def index_text(self, text: str) -> str:
        """What tantivy receives for this text at index time."""
        return self.pre(text) if self.pre is not None else text

    def terms(self, text: str) -> list[str]:
        """Query terms, in order (their positions are their indexes)."""
        if self.pre is cjk_bigram_text:
            fast = _cjk_terms(text)
            if fast is not None:
                return fast
        return self._analyzer.analyze(self.index_text(text))

    def tokens(self, text: str) -> list[dict[str, Any]]:
        """Tokens with offsets into the original text (for `_analyze` and highlighting)."""
        out = []
        position = 0
        for start, _end, piece, cjk in _pieces(text, self.pre is not None):
            if cjk:
                for term in self._analyzer.analyze(piece):
                    offset = piece.find(term)
                    out.append({"token": term, "start_offset": start + max(offset, 0),
                                "end_offset": start + max(offset, 0) + len(term), "type": "<DOUBLE>"
                                if len(term) > 1 else "<SINGLE>", "position": position})
                    position += 1
                continue
            pre = self._analyzer.pre_tokenize(piece)
            for token in pre.tokens:
                out.append({"token": token.text, "start_offset": start + token.char_offset_from,
                            "end_offset": start + token.char_offset_to, "type": "<ALPHANUM>",
                            "position": position})
                position += 1
        return out


def _pieces(text: str, bigrams: bool) -> list[tuple[int, int, str, bool]]:
    """(start, end, text, is_cjk_window) pieces covering `text`, for offset-faithful token listings."""
    if not bigrams:
        return [(0, len(text), text, False)]
    pieces: list[tuple[int, int, str, bool]] = []
    cursor = 0
    for match in _CJK_RUN.finditer(text):
        if match.start() > cursor:
            pieces.append((cursor, match.start(), text[cursor:match.start()], False))
        run = match.group(0)
        if len(run) == 1:
            pieces.append((match.start(), match.end(), run, True))
        else:
            for i in range(len(run) - 1):
                pieces.append((match.start() + i, match.start() + i + 2, run[i:i + 2], True))
        cursor = match.end()
    if cursor < len(text):
        pieces.append((cursor, len(text), text[cursor:], False))
    return pieces


def _builder(tokenizer: tantivy.Tokenizer, *filters: tantivy.Filter) -> Callable[[], tantivy.TextAnalyzer]:
    def build() -> tantivy.TextAnalyzer:
        builder = tantivy.TextAnalyzerBuilder(tokenizer)
        for f in filters:
            builder = builder.filter(f)
        return builder.build()
    return build


_WORDS = r"[\p{L}\p{N}]+"
_STANDARD = rf"[{CJK_CLASS}]|[\p{{L}}\p{{N}}&&[^{CJK_CLASS}]]+"

ANALYZERS: dict[str, Analyzer] = {a.name: a for a in (
    # Default for `text`: CJK bigrams; Latin lowercased and folded to ASCII; digits kept.
    Analyzer("default", "sr_cjk", _builder(tantivy.Tokenizer.regex(_WORDS), tantivy.Filter.remove_long(MAX_TOKEN_CHARS),
                                           tantivy.Filter.lowercase(), tantivy.Filter.ascii_fold()), cjk_bigram_text),
    # Elasticsearch's standard analyzer: each CJK character a token of its own.
    Analyzer("standard", "sr_standard", _builder(tantivy.Tokenizer.regex(_STANDARD),
                                                 tantivy.Filter.remove_long(MAX_TOKEN_CHARS),
                                                 tantivy.Filter.lowercase())),
    Analyzer("simple", "sr_simple", _builder(tantivy.Tokenizer.regex(r"\p{L}+"), tantivy.Filter.lowercase())),
    Analyzer("whitespace", "sr_whitespace", _builder(tantivy.Tokenizer.whitespace(),
                                                     tantivy.Filter.remove_long(MAX_TOKEN_CHARS))),
    Analyzer("keyword", "sr_keyword", _builder(tantivy.Tokenizer.raw())),
    Analyzer("english", "sr_english", _builder(tantivy.Tokenizer.regex(_STANDARD),
                                               tantivy.Filter.remove_long(MAX_TOKEN_CHARS),
                                               tantivy.Filter.lowercase(), tantivy.Filter.stopword("english"),
                                               tantivy.Filter.stemmer("english"))),
)}
ANALYZERS["cjk"] = Analyzer("cjk", "sr_cjk", ANALYZERS["default"].build, cjk_bigram_text)
BY_TANTIVY_NAME = {a.tantivy_name: a for a in ANALYZERS.values()}


@lru_cache(maxsize=None)
def _built(name: str) -> tantivy.TextAnalyzer:
    return ANALYZERS[name].build()


def analyzer(name: str | None) -> Analyzer:
    return ANALYZERS[name or "default"]


def register_all(index: tantivy.Index) -> None:
    for tantivy_name, entry in BY_TANTIVY_NAME.items():
        index.register_tokenizer(tantivy_name, entry.build())


def analyze_text(name: str, text: Any) -> list[dict[str, Any]]:
    """The `_analyze` API: tokens of one text or a list of texts (positions continue across texts)."""
    from ..errors import IllegalArgumentError
    if name not in ANALYZERS:
        raise IllegalArgumentError(f"failed to find global analyzer [{name}]")
    if text is None:
        raise IllegalArgumentError("text is missing")
    texts = text if isinstance(text, list) else [text]
    out: list[dict[str, Any]] = []
    offset = position = 0
    for item in texts:
        if not isinstance(item, str):
            raise IllegalArgumentError("[text] must be a string or an array of strings")
        tokens = ANALYZERS[name].tokens(item)
        for token in tokens:
            out.append({**token, "start_offset": token["start_offset"] + offset,
                        "end_offset": token["end_offset"] + offset, "position": token["position"] + position})
        if tokens:
            position = out[-1]["position"] + 101  # Elasticsearch's position_increment_gap between values
        offset += len(item) + 1
    return out
