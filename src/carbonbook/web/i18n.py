"""Page text in Chinese (default) and English, from Babel .po catalogs read at start-up.

Message ids are English; `translations/zh/LC_MESSAGES/messages.po` holds the Chinese. Reading
the .po with Babel (no compiled .mo) keeps the wheel free of a build step.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from babel.messages.pofile import read_po

LANGUAGES = ("zh", "en")
DEFAULT_LANGUAGE = "zh"
_DIR = Path(__file__).with_name("translations")


class Catalog:
    """A gettext-compatible view of one language's messages."""

    def __init__(self, messages: dict[str, str]) -> None:
        self._messages = messages

    def gettext(self, message: str) -> str:
        return self._messages.get(message) or message

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        return self.gettext(singular if n == 1 else plural)


@cache
def catalog(language: str) -> Catalog:
    """The catalog for `language` (English falls through to the message ids)."""
    path = _DIR / language / "LC_MESSAGES" / "messages.po"
    if not path.exists():
        return Catalog({})
    with path.open("rb") as handle:
        po = read_po(handle, locale=language)
    return Catalog({str(m.id): str(m.string) for m in po if m.id and m.string})


def pick_language(candidate: str | None) -> str:
    return candidate if candidate in LANGUAGES else DEFAULT_LANGUAGE
