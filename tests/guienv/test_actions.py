"""The typed action model: validation, serialisation, frames, the Gymnasium view, as_action."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from guienv.actions import (
    DIRECTIONS,
    SPACE_TYPES,
    Action,
    ActionType,
    action_space,
    from_space,
    scroll_to_swipe,
    to_space,
)
from guienv.frames import Frame, Resize, Screen
from guienv.parsing import as_action, parse_action

FINITE = st.floats(-1e5, 1e5, allow_nan=False, allow_infinity=False)
POINT = st.tuples(FINITE, FINITE)
FRAME = st.sampled_from(list(Frame))
TEXT = st.text(max_size=30)


@st.composite
def boxes(draw):
    x1, x2 = sorted((draw(FINITE), draw(FINITE)))
    y1, y2 = sorted((draw(FINITE), draw(FINITE)))
    return x1, y1, x2, y2


ACTIONS = st.one_of(
    st.builds(Action.click, FINITE, FINITE, FRAME),
    st.builds(Action.long_press, FINITE, FINITE, FRAME, st.none() | st.floats(0, 1e5)),
    st.builds(Action.swipe, POINT, POINT, FRAME, st.none() | st.floats(0, 1e5)),
    st.builds(lambda d: Action(ActionType.SWIPE, direction=d), st.sampled_from(DIRECTIONS)),
    st.builds(Action.scroll, st.sampled_from(DIRECTIONS), st.none() | POINT, FRAME),
    st.builds(lambda t, p, f: Action.type_text(t, p, f if p else Frame.PIXEL), TEXT, st.none() | POINT, FRAME),
    st.builds(Action.open_app, TEXT.filter(str.strip)),
    st.builds(Action.simple, st.sampled_from(["navigate_back", "navigate_home", "keyboard_enter", "wait"])),
    st.builds(Action.finish, st.sampled_from(["complete", "infeasible"]), st.none() | TEXT),
    st.builds(Action.box_answer, boxes(), FRAME),
)


# -- validation ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"type": "click"}, "needs a point"),
        ({"type": "long_press", "point": None}, "needs a point"),
        ({"type": "click", "point": (float("nan"), 1)}, "finite"),
        ({"type": "click", "point": (1, float("inf"))}, "finite"),
        ({"type": "click", "point": (1, 2, 3)}, "two numbers"),
        ({"type": "click", "point": "12"}, "two numbers"),  # a string is not a pair of numbers
        ({"type": "click", "point": (10**400, 1)}, "two numbers"),  # overflows float
        ({"type": "box", "box": (10, 10, 5, 20)}, "x1 <= x2"),
        ({"type": "box", "box": (0, 20, 5, 10)}, "y1 <= y2"),
        ({"type": "box"}, "needs a box"),
        ({"type": "swipe", "point": (1, 2)}, "start and end point or a direction"),
        ({"type": "scroll"}, "needs a direction"),
        ({"type": "scroll", "direction": "sideways"}, "direction must be one of"),
        ({"type": "type"}, "needs text"),
        ({"type": "type", "text": 5}, "text must be a string"),
        ({"type": "open_app", "text": "  "}, "non-empty app name"),
        ({"type": "finish", "status": "maybe"}, "finish status"),
        ({"type": "finish", "status": 1}, "status must be a string"),
        ({"type": "long_press", "point": (1, 2), "duration_ms": -5}, "non-negative"),
        ({"type": "long_press", "point": (1, 2), "duration_ms": "soon"}, "duration_ms must be a number"),
        ({"type": "click", "point": (1, 2), "frame": "inches"}, "Frame"),
        ({"type": "teleport"}, "ActionType"),
    ],
)
def test_validation_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Action(**kwargs)


def test_normalisation():
    a = Action(ActionType.SCROLL, direction=" DOWN ")
    assert a.direction == "down"
    assert Action.finish(" Infeasible ").status == "infeasible"
    assert Action.finish().status == "complete"
    c = Action("click", point=[np.float32(1.5), 2], frame="grid1000")
    assert c.type is ActionType.CLICK and c.point == (1.5, 2.0) and c.frame is Frame.GRID1000
    assert Action.click(1, 2) == Action.click(1.0, 2.0)
    assert Action.invalid("a") == Action.invalid("b")  # the reason is not part of equality
    assert not Action.invalid("x").is_valid and Action.invalid("x").reason == "x"
    assert Action.box_answer((0, 0, 10, 20)).target == (5.0, 10.0)
    assert Action.click(3, 4).target == (3.0, 4.0) and Action.simple("wait").target is None


# -- serialisation ------------------------------------------------------------------------------
@settings(max_examples=300, deadline=None)
@given(ACTIONS)
def test_to_dict_from_dict_round_trip(action):
    d = action.to_dict()
    assert d["type"] == action.type.value
    assert Action.from_dict(d) == action
    # ... and through real JSON text, as envs and logs store it
    assert Action.from_dict(json.loads(json.dumps(d))) == action
    assert as_action(d) == action


def test_to_dict_shape():
    assert Action.click(1, 2, "grid1000").to_dict() == {"type": "click", "point": [1.0, 2.0], "frame": "grid1000"}
    assert Action.simple("navigate_back").to_dict() == {"type": "navigate_back"}
    assert Action.finish("complete", "42").to_dict() == {"type": "finish", "text": "42", "status": "complete"}
    assert Action.invalid("junk").to_dict() == {"type": "invalid", "reason": "junk"}


def test_from_dict_errors():
    with pytest.raises(KeyError):
        Action.from_dict({"point": [1, 2]})
    with pytest.raises(ValueError, match="unknown action fields"):
        Action.from_dict({"type": "click", "point": [1, 2], "coordinate": [1, 2]})
    with pytest.raises(ValueError, match="JSON object"):
        Action.from_dict([("type", "click")])


# -- frames -------------------------------------------------------------------------------------
@settings(max_examples=200, deadline=None)
@given(ACTIONS, FRAME, st.sampled_from([(5120, 2880), (2560, 1440), (1080, 2400), (7, 3)]))
def test_to_frame_round_trip(action, frame, size):
    screen = Screen(*size, Resize(max_pixels=1280 * 28 * 28))
    there = action.to_frame(frame, screen)
    if any(v is not None for v in (action.point, action.end, action.box)):
        assert there.frame is frame
    back = there.to_frame(action.frame, screen)
    assert back.type is action.type and back.text == action.text and back.direction == action.direction
    for name in ("point", "end", "box"):
        a, b = getattr(action, name), getattr(back, name)
        assert (a is None) == (b is None)
        if a is not None:
            assert all(math.isclose(u, v, rel_tol=1e-12, abs_tol=1e-9) for u, v in zip(a, b))


def test_to_frame_values():
    s = Screen(1920, 1080)
    a = Action.click(500, 500, Frame.GRID1000).to_frame(Frame.PIXEL, s)
    assert a == Action.click(960, 540, Frame.PIXEL)
    b = Action.box_answer((0, 0, 1932, 1092), Frame.RESIZED).to_frame("normalized", s)
    assert b.box == (0.0, 0.0, 1.0, 1.0) and b.frame is Frame.NORMALIZED


# -- Gymnasium view -------------------------------------------------------------------------------
@settings(max_examples=300, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from([(1920, 1080), (5120, 2880), (1, 1)]))
def test_space_sample_round_trip(seed, size):
    space = action_space()
    space.seed(seed)
    sample = space.sample()
    action = from_space(sample)
    if not action.is_valid:  # only open_app with a blank name, which no agent can mean
        assert SPACE_TYPES[int(sample["type"])] is ActionType.OPEN_APP and not sample["text"].strip()
        return
    encoded = to_space(action, Screen(*size))
    assert space.contains(encoded)
    assert from_space(encoded) == action
    assert as_action(sample) == action


def test_to_space_rejects_invalid_and_encodes_pixels():
    with pytest.raises(ValueError, match="invalid"):
        to_space(Action.invalid("x"), Screen(10, 10))
    enc = to_space(Action.click(960, 270), Screen(1920, 1080))
    assert SPACE_TYPES[enc["type"]] is ActionType.CLICK
    np.testing.assert_array_equal(enc["point"], np.array([0.5, 0.25], dtype=np.float32))
    swipe = to_space(Action.swipe((10, 10), (10, 2)), Screen(20, 20))
    assert DIRECTIONS[swipe["direction"]] == "up"  # direction-less swipe: the finger's direction
    assert to_space(Action.type_text("héllo\n"), Screen(2, 2))["text"] == "hllo"  # space charset only


# -- as_action ------------------------------------------------------------------------------------
def test_as_action_each_input_kind():
    a = Action.click(1, 2)
    assert as_action(a) is a
    text = '<tool_call>{"name": "mobile_use", "arguments": {"action": "click", "coordinate": [5, 6]}}</tool_call>'
    assert as_action(text) == parse_action(text) == Action.click(5, 6)
    assert as_action({"type": "scroll", "direction": "up"}) == Action.scroll("up")
    space = action_space()
    space.seed(3)
    sample = space.sample()
    assert as_action(sample) == from_space(sample)
    assert as_action("no action here").type is ActionType.INVALID
    for bad in ({"type": "click"}, {"type": 1e400}, {"type": "finish", "status": 1}, {"point": [1, 2]}):
        got = as_action(bad)
        assert got.type is ActionType.INVALID and got.reason.startswith("bad action dict")
    for other in (None, 3, 2.5, b"click", [1, 2]):
        got = as_action(other)
        assert got.type is ActionType.INVALID and type(other).__name__ in got.reason


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=6), kids, max_size=4),
    max_leaves=12,
)
KEYS = st.sampled_from(["type", "point", "end", "box", "direction", "text", "status", "duration_ms", "frame", "reason"])


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(KEYS | st.text(max_size=5), JSONISH | st.sampled_from([t.value for t in ActionType]), max_size=6))
@example({"type": "invalid"})  # once came back without a reason
def test_as_action_never_raises_on_dicts(d):
    got = as_action(d)
    assert isinstance(got, Action)
    assert got.is_valid or got.reason


# -- scroll and swipe conventions -----------------------------------------------------------------
@pytest.mark.parametrize("direction,finger", [("down", "up"), ("up", "down"), ("left", "right"), ("right", "left")])
def test_scroll_to_swipe_moves_the_finger_opposite(direction, finger):
    screen = Screen(1080, 2400)
    swipe = scroll_to_swipe(Action.scroll(direction), screen)
    assert swipe.type is ActionType.SWIPE and swipe.frame is Frame.PIXEL
    assert swipe.swipe_direction() == finger
    (sx, sy), (ex, ey) = swipe.point, swipe.end
    if direction in ("up", "down"):  # vertical: centred column, half the screen height
        assert sx == ex == 540 and abs(ey - sy) == 1200
    else:
        assert sy == ey == 1200 and abs(ex - sx) == 540


def test_scroll_down_is_a_finger_swipe_from_bottom_to_top():
    swipe = scroll_to_swipe(Action.scroll("down"), Screen(1000, 2000))
    assert swipe.point == (500.0, 1500.0) and swipe.end == (500.0, 500.0)


def test_scroll_to_swipe_anchor_and_clamp():
    screen = Screen(1000, 1000)
    s = scroll_to_swipe(Action.scroll("down", (500, 100), Frame.GRID1000), screen, fraction=0.5)
    assert s.point == (500.0, 350.0) and s.end == (500.0, 0.0)  # 100 - 250 clamped to the top edge
    s = scroll_to_swipe(Action.scroll("up", (0.5, 0.9), Frame.NORMALIZED), screen)
    assert s.point == (500.0, 650.0) and s.end == (500.0, 999.0)  # clamped to the last pixel row
    with pytest.raises(ValueError, match="scroll"):
        scroll_to_swipe(Action.click(1, 1), screen)


@pytest.mark.parametrize(
    "start,end,expected",
    [
        ((0, 0), (10, 3), "right"),
        ((10, 0), (0, 3), "left"),
        ((0, 10), (2, 0), "up"),
        ((0, 0), (3, 10), "down"),
        ((0, 0), (5, 5), "down"),  # a tie goes to the vertical axis
        ((0, 0), (-5, -5), "up"),
    ],
)
def test_swipe_direction(start, end, expected):
    assert Action.swipe(start, end).swipe_direction() == expected


def test_swipe_direction_edge_cases():
    assert Action(ActionType.SWIPE, direction="left").swipe_direction() == "left"
    assert Action(ActionType.SWIPE, point=(5, 5), end=(5, 5), direction="up").swipe_direction() == "up"
    assert Action.swipe((5, 5), (5, 5)).swipe_direction() is None
    assert Action.click(1, 1).swipe_direction() is None
    assert Action.scroll("down").swipe_direction() is None


def _deep_list(depth: int) -> list:
    x: list = []
    for _ in range(depth):
        x = [x]
    return x


def _deep_dict(depth: int) -> dict:
    d: dict = {}
    cur = d
    for _ in range(depth):
        cur["a"] = {}
        cur = cur["a"]
    return d


@pytest.mark.parametrize("field", ["point", "end", "box", "direction", "status", "text", "duration_ms", "type"])
@pytest.mark.parametrize("make", [_deep_list, _deep_dict])
def test_python_built_actions_nested_past_the_recursion_limit_are_invalid_not_a_crash(field, make):
    from guienv.parsing import as_action

    value = make(5000)
    base = {"type": "scroll" if field == "direction" else "finish" if field == "status" else "click",
            "point": [1, 2]}
    action = as_action({**base, field: value})
    assert not action.is_valid and action.reason
    assert len(action.reason) < 400  # the offending value shown shortened
