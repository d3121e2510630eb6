"""Text from evidence as people read it, on pages and in the terminal: the characters that
change how the text after them is shown are shown themselves, as visible escapes.

Event data, file names and rule texts are written by whoever made the evidence; U+202E
(RIGHT-TO-LEFT OVERRIDE) makes `invoice<U+202E>fdp.exe` read `invoiceexe.pdf`. The terminal
adds its own controls (cli/common.py escapes C0 and C1 as well); the web page escapes NUL
(web/pages.py). Both take the reordering characters from here.
"""

from __future__ import annotations

#: Characters that reorder or break the text after them on screen: the Arabic letter mark,
#: the left-to-right and right-to-left marks, the line and paragraph separators, the bidi
#: embeddings and overrides (U+202A-E) and isolates (U+2066-9).
REORDERING = frozenset(
    chr(c) for c in (0x061C, 0x200E, 0x200F, *range(0x2028, 0x202F), *range(0x2066, 0x206A))
)
