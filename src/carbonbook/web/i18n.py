"""Page text in Chinese (default) and English, from Babel .po catalogs read at start-up.

Message ids are English. `translations/{zh,en}/LC_MESSAGES/messages.po` hold the text; each is
read with Babel and turned into a `gettext.GNUTranslations` in memory, so the wheel needs no
compile step and the Jinja2 i18n extension gets a real gettext object (plural forms included).
`translations/messages.pot` is the extraction template (`pybabel extract -F babel.cfg`).
"""

from __future__ import annotations

import gettext
from functools import cache
from io import BytesIO
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

LANGUAGES = ("zh", "en")
DEFAULT_LANGUAGE = "zh"
TRANSLATIONS = Path(__file__).with_name("translations")


def catalog_path(language: str) -> Path:
    return TRANSLATIONS / language / "LC_MESSAGES" / "messages.po"


@cache
def translations(language: str) -> gettext.GNUTranslations:
    """The gettext object for one of `LANGUAGES` (an untranslated message reads as its id)."""
    if language not in LANGUAGES:
        msg = f"no catalog for language {language!r}; have {LANGUAGES}"
        raise ValueError(msg)
    with catalog_path(language).open("rb") as handle:
        catalog = read_po(handle, locale=language)
    buffer = BytesIO()
    write_mo(buffer, catalog)  # fuzzy entries are left out, as msgfmt does
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)


def pick_language(candidate: object) -> str:
    """`candidate` if it is a language we have, else the default (Chinese)."""
    return candidate if isinstance(candidate, str) and candidate in LANGUAGES else DEFAULT_LANGUAGE


def html_lang(language: str) -> str:
    """The value of <html lang>: Simplified Chinese as used in mainland China, or English."""
    return "zh-CN" if language == "zh" else "en"
