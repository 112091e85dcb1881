"""Key tables and template matching."""

from __future__ import annotations

import numpy as np
import pytest

from corral.rfb import LocalProtocolError
from corral.rfb._keys import key_for_char, parse_combo
from corral.rfb._match import find_template


def test_keys_for_typing() -> None:
    assert key_for_char("a").keysym == ord("a") and not key_for_char("a").shift
    assert key_for_char("A").shift and key_for_char("A").scancode == key_for_char("a").scancode
    assert key_for_char("!").shift and key_for_char("!").scancode == 0x02
    assert key_for_char("\n").keysym == 0xFF0D
    assert key_for_char("é").keysym == 0xE9 and key_for_char("é").scancode == 0
    assert key_for_char("雪").keysym == 0x01000000 | ord("雪")
    with pytest.raises(LocalProtocolError, match="control character"):
        key_for_char("\x07")


def test_key_combinations() -> None:
    keys = parse_combo("ctrl-alt-delete")
    assert [k.keysym for k in keys] == [0xFFE3, 0xFFE9, 0xFFFF]
    assert parse_combo("-")[0].keysym == ord("-")
    assert parse_combo("F12")[0].scancode == 0x58
    with pytest.raises(LocalProtocolError, match="unknown key"):
        parse_combo("ctrl-nosuchkey")


def test_find_template() -> None:
    rng = np.random.default_rng(5)
    screen = rng.integers(0, 3, (60, 80, 3), dtype=np.uint8)
    template = screen[20:30, 33:50].copy()
    x, y = find_template(screen, template) or (-1, -1)
    assert np.array_equal(screen[y : y + 10, x : x + 17], template)
    assert (y, x) <= (20, 33)
    assert find_template(screen, np.full((5, 5, 3), 9, np.uint8)) is None
    assert find_template(screen, screen) == (0, 0)
    assert find_template(screen[:5, :5], screen) is None
    rgba = np.dstack([template, np.zeros(template.shape[:2], np.uint8)])
    assert find_template(screen, rgba) == (x, y)
