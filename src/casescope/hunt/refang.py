"""Undo the usual defanging of network indicators (`hxxp://evil[.]com`, `a[at]b[.]org`)."""

from __future__ import annotations

import re

_SCHEMES = re.compile(r"\bh(?:xx|XX|xX|Xx)p(s?)(?=\[?:)", re.IGNORECASE)
_FTP = re.compile(r"\bfxp(?=\[?:)", re.IGNORECASE)
_DOT = re.compile(r"\[\.\]|\(\.\)|\{\.\}|[\[({]dot[\])}]", re.IGNORECASE)
_COLON = re.compile(r"\[:\]|\[://\]")
_AT = re.compile(r"\[@\]|\(@\)|\{@\}|[\[({]at[\])}]", re.IGNORECASE)


def _refang_once(value: str) -> str:
    value = _SCHEMES.sub(lambda m: f"http{m.group(1)}", value)
    value = _FTP.sub("ftp", value)
    value = _COLON.sub(lambda m: m.group(0)[1:-1], value)
    value = _DOT.sub(".", value)
    return _AT.sub("@", value)


def refang(value: str) -> str:
    """Return `value` with defanged schemes, dots, colons and at-signs restored.

    Repeated until nothing changes, so that `refang(refang(x)) == refang(x)` also for
    nested forms such as `[[.]]` (it ends: every replacement but the scheme's shortens the
    text, and a scheme replacement cannot create another).

    >>> refang("hxxps[:]//evil[.]com/a")
    'https://evil.com/a'
    """
    while (fanged := _refang_once(value)) != value:
        value = fanged
    return value
