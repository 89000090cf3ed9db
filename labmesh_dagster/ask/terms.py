"""What a question names: its content words, and the ids, numbers and units that a true answer must hold.

The extractive answerer scores a sentence partly by these: meaning alone finds
"Q30 was 93.4% for LIV-01" a fine answer to "what is the Q30 of LIV-02", and
only the sample id tells the two apart. Ids are compared without case and
without their dashes (``LIV-01``, ``liv01``), as people and files spell them
either way.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_TOKEN = re.compile(r"[\w/%°µμ.+-]+", re.UNICODE)
_WORD = re.compile(r"[^\W_]+", re.UNICODE)

_STOPWORDS = """a about above after all also am an and any are as at be been before being below between both but by can
    could did do does doing done during each few for from further get got had has have having he her here hers
    him his how i if in into is it its itself just me more most my no nor not now of off on once only or other
    our out over own same she should so some such than that the their them then there these they this those
    through to too under until up us very was we were what when where which while who whom why will with would
    you your yours tell give show find list please much many know"""
STOPWORDS = frozenset(_STOPWORDS.split())
"""Words that say nothing of what is asked: they never count as overlap."""

ENTITY_ID = re.compile(r"^(?=.*\d)[a-z]{2,}(?:[-_.]?[a-z]+)*[-_.]?\d[\w.-]*$", re.IGNORECASE)
"""A sample's or an experiment's id: words of two letters or more, then digits (``LIV-01``, ``EXP-12``,
``DEMO-RNASEQ-001``, ``GRCm39``)."""

NUMBER = re.compile(r"^\d+(?:[.,]\d+)?(?=$|[%°a-zµμ/-])", re.IGNORECASE)

_UNITS = """% °c c ng/µl ng/ul ng/μl µg/µl ug/ul µg/ml ug/ml mg/ml ng/ml pm nm µm um mm m µl ul ml l mg µg ug ng g kg
    bp kb mb gb x rpm min h s pmol nmol fold rin q20 q30"""
UNITS = frozenset(_UNITS.split())
"""Units and measures a question may name; a sentence with the same unit likely states the asked value."""


def words(text: str) -> list[str]:
    return [word.casefold() for word in _WORD.findall(text)]


def stem(word: str) -> str:
    """A crude English stem, enough for "libraries"/"library", "measured"/"measure" to meet."""
    for suffix, keep in (("ies", "y"), ("sses", "ss"), ("ing", ""), ("ed", ""), ("er", ""), ("es", ""), ("s", "")):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)] + keep
    return word


def content_terms(text: str) -> set[str]:
    """The question's (or a sentence's) words that carry meaning, stemmed."""
    return {stem(word) for word in words(text) if word not in STOPWORDS and len(word) > 1}


def normal_id(token: str) -> str:
    return re.sub(r"[-_.]", "", token.casefold())


def _tokens(text: str) -> Iterable[str]:
    for token in _TOKEN.findall(text):
        token = token.strip(".,;:+-")
        if token:
            yield token


CAPITAL_ID = re.compile(r"^[A-Z][A-Z0-9]+-(?:[A-Z0-9]|[A-Z]*\d[A-Z0-9]*)$")
"""An id in capitals with a dash and no digit needed (``SOIL-C``, ``KO-B``), as samples are often named: its last
part is one letter or holds a digit, so that an abbreviation (``LC-MS``, ``RNA-SEQ``) is not taken for an id."""


def entity_ids(text: str) -> set[str]:
    """Sample and experiment ids the text names, normalised (``LIV-01`` -> ``liv01``)."""
    return {normal_id(token) for token in _tokens(text) if ENTITY_ID.match(token) or CAPITAL_ID.match(token)}


def symbols(text: str) -> set[str]:
    """Names the text spells as symbols, casefolded: acronyms in capitals (``MIC``, ``DIA``) and names with a
    capital inside (``pH``, ``cTnT``, ``NovaSeq``), never a unit. Such a name says exactly what is asked about;
    a question in capitals throughout spells nothing this way."""
    if text.isupper():
        return set()
    found = set()
    for token in _WORD.findall(text):
        if len(token) < 2 or _unit_form(token) in UNITS:
            continue
        if (token.isupper() and any(char.isalpha() for char in token)) or any(char.isupper() for char in token[1:]):
            found.add(token.casefold())
    return found


def holds_word(words_of_text: set[str], word: str) -> bool:
    """Whether ``word`` (casefolded) is among the text's words, as it is or in its plural (``MIC``, ``MICs``)."""
    return word in words_of_text or f"{word}s" in words_of_text or (word.endswith("s") and word[:-1] in words_of_text)


def numbers(text: str) -> set[str]:
    """Numbers the text states, with or without a unit glued on (``93.4%``), never an id's digits."""
    found = set()
    for token in _tokens(text):
        match = NUMBER.match(token)
        if match:
            found.add(match.group().replace(",", "."))
    return found


_DATE_OR_TIME = re.compile(r"\b\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2})?\S*)?|\b\d{1,2}:\d{2}(?::\d{2})?\b")


def amounts(text: str) -> set[str]:
    """The numbers the text states as amounts: those of its dates and times of day (``2026-11-06``, ``09:30``)
    aside, as a question asking "how many" or "what proportion" is not answered by a date."""
    return numbers(_DATE_OR_TIME.sub(" ", text))


_MICRO = str.maketrans({"μ": "µ"})


def _unit_form(token: str) -> str:
    """One spelling per unit: the Greek mu and the micro sign alike, and ``ul``, ``ug``, ``um`` as people type them."""
    folded = token.casefold().translate(_MICRO)
    return re.sub(r"(^|/)u(?=[lgm]$|[lgm]/)", r"\1µ", folded)


def units(text: str) -> set[str]:
    """Units the text names. A one-letter unit (``s``, ``m``, ``g``) counts only after a number: alone it is
    more often a possessive's ``s`` ("the specimen's") or a letter of a name than seconds or metres."""
    found = set()
    previous = ""
    for token in _tokens(text):
        folded = _unit_form(token)
        if folded in UNITS and (len(folded) > 1 or NUMBER.match(previous)):
            found.add(folded)
        previous = token
        # "35.2ng/µl", "93%": a unit glued to its number
        glued = re.match(r"^\d+(?:[.,]\d+)?(.+)$", folded)
        if glued and _unit_form(glued.group(1)) in UNITS:
            found.add(_unit_form(glued.group(1)))
    return found


def specifics(text: str) -> set[str]:
    """Everything specific the text names: ids, numbers and units, each normalised."""
    return entity_ids(text) | numbers(text) | {f"unit:{unit}" for unit in units(text)}


_QUANTITY = re.compile(
    r"\b(how (many|much|long|large|big|high|low|deep|fast)|what (percentage|fraction|proportion|share)"
    r"|concentration|temperature|yield|length|depth|coverage|rate|ratio|amount|volume|size|number of|count)\b",
    re.IGNORECASE,
)
_WHEN = re.compile(r"\b(when|what (day|date|time|year|month))\b", re.IGNORECASE)
_DATE = re.compile(
    r"\b(\d{4}-\d{2}(-\d{2})?|(19|20)\d{2}|january|february|march|april|may|june|july|august|september|october"
    r"|november|december)\b",
    re.IGNORECASE,
)


def wants_quantity(question: str) -> bool:
    """Whether the question asks for an amount ("how many", "what concentration"): its answer states a number."""
    return bool(_QUANTITY.search(question))


def wants_date(question: str) -> bool:
    return bool(_WHEN.search(question))


def states_date(text: str) -> bool:
    return bool(_DATE.search(text))


def holds_unit(text: str, unit: str) -> bool:
    """Whether the text states ``unit`` (a form of `units`): as a unit, or ending a column's name (``conc_nM``)."""
    if unit in units(text):
        return True
    return re.search(rf"[\W_]{re.escape(unit)}(?![\w/])", _unit_form(text)) is not None
