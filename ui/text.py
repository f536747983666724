"""Text a user controls (run names, URL parameters, dataset names, file columns, error messages) made safe
for the places Streamlit renders as Markdown: st.markdown, st.warning/info/error/success, st.caption,
headers, metric and widget labels. Unescaped, a run named `![i](http://host/x.png)` loads a remote image
and `[CLICK](http://host/phish)` shows a working link.

`md` escapes text to read as itself inside Markdown; `code` shows it as a code span; `plotly` escapes it for
Plotly's own HTML-like text (titles, legends). Values of the URL are cut to MAX_LINK_CHARS before a page reads
them (`cut`, `link_value`): a 100,000-character ?run= or ?round= made the pages slow to settle."""
from __future__ import annotations

import html
import re
from typing import Any

MAX_LINK_CHARS = 200  # a run id is 8 characters, a round a few digits; nothing a page offers is longer

# Marks that open a link or image ([text](url), ![alt](url), <url>), emphasis, code, strike-through, an
# HTML tag or entity, maths ($…$) or, with Streamlit's colour extension, :red[…]. A "[" that no "]" follows,
# a "<" before a space or digit, an "&" that starts no entity and an "_" inside a word (label_col) open
# nothing and are left as they are, so messages such as "must be in [0 %, 100 %)" read as they are typed.
_INLINE = re.compile(r"([\\`*~$]|\[(?=.*\])|<(?=[A-Za-z/!?])|&(?=#?\w+;)|(?<!\w)_|_(?!\w))")
# marks that start a block (heading, list, quote) when they open the text ("0.5" and "-1" do not)
_BLOCK_START = re.compile(r"^(\s*)(?:([#+\-])(?=\s|$)|(>)|(\d+)([.)])(?=\s|$))")
# Streamlit turns bare URLs (http://…, www.…) and e-mail addresses into links twice: while it parses (a
# backslash before the ":", "." and "@" of the word stops that) and again in the parsed text, where the host
# needs a dot (a word joiner, U+2060, invisible and no line break, before each dot stops that). It also draws
# :material/name: (an icon), :name: (an emoji) and :red[…] (a colour) however their colons are escaped: a word
# joiner after such a colon stops that. Only there: a name such as upload:heart is copied as it reads.
_URL_LIKE = re.compile(r"\S*(?:://|www\.|@)\S*", re.IGNORECASE)
_ICON_COLON = re.compile(r":(?=[A-Za-z][\w/+-]*(?::|\\?\[))")
_WORD_JOINER = "\u2060"


def single_line(value: Any) -> str:
    """`value` as text on one line (a line break in Markdown can start a heading, a list or a code block)."""
    return re.sub(r"[\r\n\t\v\f]+", " ", str(value))


def md(value: Any) -> str:
    """`value` read as itself inside Markdown: no link, image, emphasis, heading, colour or icon."""
    text = _INLINE.sub(r"\\\1", single_line(value))
    text = _URL_LIKE.sub(lambda m: re.sub(r"([:@])", r"\\\1", m[0]).replace(".", _WORD_JOINER + "\\."), text)
    text = _ICON_COLON.sub(":" + _WORD_JOINER, text)
    return _BLOCK_START.sub(lambda m: m[1] + (f"{m[4]}\\{m[5]}" if m[4] else f"\\{m[2] or m[3]}"), text, count=1)


def code(value: Any) -> str:
    """`value` as a Markdown code span: shown verbatim, in a fence of more backticks than it holds."""
    text = single_line(value)
    fence = "`" * (max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def plotly(value: Any) -> str:
    """`value` for Plotly's text (titles, legends, hover), which reads tags such as <a href=…> and <b>."""
    return html.escape(single_line(value), quote=False)


def cut(value: str, limit: int = MAX_LINK_CHARS) -> str:
    """A value from a link, cut to `limit` characters plus "…" when it is longer (see `link_value`)."""
    return value if len(value) <= limit else value[:limit] + "…"


def link_value(value: str) -> str:
    """A value from a link (already `cut`) for a message: a code span, named as too long if it was cut."""
    if len(value) > MAX_LINK_CHARS:
        return f"{code(value[:40] + '…')} (too long: more than {MAX_LINK_CHARS} characters)"
    return code(value)
