"""Message templates: ``{name}``-style merge fields filled from the send list's columns.

Only plain field names are allowed - no format specs, indexes or attributes -
so a template is a text a shop can write, and filling it can never run
anything. ``{{`` and ``}}`` stand for literal braces. The box's signature
(e.g. 【小王便利店】) is appended unless the text already carries it, and a
marketing text's unsubscribe footer (回T退订) before it, unless the text
already says how to unsubscribe: the rules for commercial SMS want both.
"""

from __future__ import annotations

import functools
import re
import string
from dataclasses import dataclass

from appliance.errors import TemplateError
from appliance.forbidden import normalise
from appliance.text import say

#: A text ending in one of these needs nothing between it and the footer; any other gets a Chinese comma.
_ENDS_A_CLAUSE = set("，。！？；：、,.!?;: \n）)】」』”")
#: A text that already tells the customer how to unsubscribe (in its normalised form): no footer added.
_UNSUBSCRIBE = re.compile(r"退订|拒收|回t|回td|回n|stop|unsubscribe")


def says_how_to_leave(text: str) -> bool:
    return _UNSUBSCRIBE.search(normalise(text)) is not None


def _joined(before: str, ending: str) -> str:
    """The footer as it follows ``before``: after a comma unless ``before`` ends a clause (or is empty)."""
    return ending if not before or before[-1] in _ENDS_A_CLAUSE else "，" + ending


@dataclass(frozen=True)
class Template:
    text: str
    signature: str = ""
    footer: str = ""
    """The unsubscribe footer marketing texts end with (before the signature); "" for transactional ones."""

    def __post_init__(self) -> None:
        if not self.text.strip():
            raise TemplateError(say("the message text is empty"))
        self.parts  # noqa: B018 - parse now, so a bad template fails before any row is read

    @functools.cached_property
    def parts(self) -> list[tuple[str, str | None]]:
        """(literal text, field name or None) pairs."""
        try:
            parsed = list(string.Formatter().parse(self.text))
        except ValueError as exc:
            raise TemplateError(say("the template has an unmatched brace ({exc}); write {{{{ or }}}} for a "
                                    "literal brace", exc=exc)) from None
        out = []
        for literal, name, spec, conversion in parsed:
            if name is not None:
                if spec or conversion or not name.strip() or any(c in name for c in ".[]"):
                    field = name + ("!" + conversion if conversion else "") + (":" + spec if spec else "")
                    raise TemplateError(say("{{{field}}} is not a merge field: write a column name in braces, like "
                                            "{{姓名}}", field=field))
                name = name.strip()
            out.append((literal, name))
        return out

    @functools.cached_property
    def ending(self) -> str:
        """What every message gets after the text: the footer, unless the template has its own."""
        return self.footer if self.footer and not says_how_to_leave(self.text) else ""

    @property
    def fields(self) -> list[str]:
        return list(dict.fromkeys(name for _, name in self.parts if name))

    def check(self, columns: list[str]) -> None:
        """Raise TemplateError naming any field the list does not have."""
        missing = [f for f in self.fields if f not in columns]
        if missing:
            have = ", ".join(columns) or "(none)"
            raise TemplateError(say("the template uses {missing}, which the list does not have; its columns are: "
                                    "{have}",
                                    missing=', '.join('{' + m + '}' for m in missing),
                                    have=have))

    def pieces_for(self, columns: list[str]):
        """A function from a row's cells (in ``columns`` order) to the pieces of its text - the template's
        fixed text and the row's values in turn, then the signature if the text lacks it - whose join is
        :meth:`render`'s answer. Made once per list: a row costs no dict and no parsing."""
        where = {name: i for i, name in enumerate(columns)}  # two columns of one name: the last, as render
        plan = [(literal, where.get(name, -1) if name else None) for literal, name in self.parts]
        signature = self.signature
        ending = self.ending

        def pieces(cells: list[str]) -> list[str]:
            out = []
            for literal, i in plan:
                out.append(literal)
                if i is not None:
                    out.append(cells[i] if 0 <= i < len(cells) else "")
            if ending:
                out.append(_joined(next((p for p in reversed(out) if p), ""), ending))
            if signature and signature not in "".join(out):
                out.append(signature)
            return out

        return pieces

    def render(self, values: dict[str, str]) -> str:
        text = "".join(literal + (values.get(name, "") if name else "") for literal, name in self.parts)
        if self.ending:
            text += _joined(text, self.ending)
        if self.signature and self.signature not in text:
            text += self.signature
        return text
