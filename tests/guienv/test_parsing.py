"""Model-output parsers: one realistic output per format with its exact Action, the documented
decisions, and property tests on hostile text (thousands of examples, none may raise)."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from guienv.actions import Action, ActionType, to_space
from guienv.frames import Frame, Screen
from guienv.parsing import (
    MAX_CHARS,
    MAX_COORD,
    ParseResult,
    as_action,
    parse_action,
    parse_action_detailed,
    read_action,
)

R, G, P = Frame.RESIZED, Frame.GRID1000, Frame.PIXEL
BACK, HOME, ENTER, WAIT = (Action.simple(t) for t in ("navigate_back", "navigate_home", "keyboard_enter", "wait"))


def check(text: str, expected: Action, fmt: str | None, frame: Frame = P) -> ParseResult:
    res = parse_action_detailed(text, frame=frame)
    assert res.action == expected, res.action.reason
    assert res.action.frame is expected.frame
    assert res.format == fmt
    return res


def invalid(text, *, frame: Frame = P, match: str = "", fmt: str | None = None) -> ParseResult:
    res = parse_action_detailed(text, frame=frame)
    assert res.action.type is ActionType.INVALID, res.action
    assert res.action.reason and match in res.action.reason, res.action.reason
    assert res.format == fmt
    return res


# -- AndroidControl / AndroidWorld action JSON ----------------------------------------------------
AC = [
    ('{"action_type":"click","x":561,"y":2036}', Action.click(561, 2036)),
    ('{"action_type": "long_press", "x": 540, "y": 1100}', Action.long_press(540, 1100)),
    ('{"action_type": "double_tap", "x": 10, "y": 20}', Action.click(10, 20)),
    ('{"action_type":"scroll","direction":"down"}', Action.scroll("down")),
    ('{"action_type": "scroll", "direction": "up", "x": 500, "y": 900}', Action.scroll("up", (500, 900))),
    ('{"action_type": "swipe", "direction": "left"}', Action(ActionType.SWIPE, direction="left")),
    ('{"action_type":"open_app","app_name":"Zoho Meeting"}', Action.open_app("Zoho Meeting")),
    ('{"action_type":"input_text","text":"Hello world"}', Action.type_text("Hello world")),
    ('{"action_type": "type", "text": "pizza", "x": 300, "y": 200}', Action.type_text("pizza", (300, 200))),
    ('{"action_type":"navigate_home"}', HOME),
    ('{"action_type":"navigate_back"}', BACK),
    ('{"action_type": "keyboard_enter"}', ENTER),
    ('{"action_type":"wait"}', WAIT),
    ('{"action_type": "status", "goal_status": "complete"}', Action.finish("complete")),
    ('{"action_type": "status", "goal_status": "infeasible"}', Action.finish("infeasible")),
    ('{"action_type": "answer", "text": "It is 5 pm."}', Action.finish("complete", "It is 5 pm.")),
]


@pytest.mark.parametrize("text,expected", AC)
def test_androidcontrol_json(text, expected):
    check(text, expected, "androidcontrol_json")


def test_androidcontrol_in_think_answer():
    text = (
        "<think>The goal is to open the settings. The gear icon is near the top right.</think>\n"
        '<answer>{"action_type": "click", "x": 980, "y": 156}</answer>'
    )
    res = check(text, Action.click(980, 156), "androidcontrol_json")
    assert res.think.startswith("The goal is to open")
    assert res.answer == '{"action_type": "click", "x": 980, "y": 156}'
    assert res.raw == res.answer


def test_androidcontrol_errors():
    invalid('{"action_type": "click", "index": 5}', match="UI tree", fmt="androidcontrol_json")
    invalid('{"action_type": "scroll", "direction": "diagonal"}', match="direction", fmt="androidcontrol_json")
    invalid('{"action_type": "status", "goal_status": "unsure"}', match="status", fmt="androidcontrol_json")
    invalid('{"action_type": "unknown"}', match="unknown action_type", fmt="androidcontrol_json")
    invalid('{"action_type": "open_app", "app_name": "  "}', match="app name", fmt="androidcontrol_json")


# -- Qwen2.5-VL mobile_use / UI-S1 action_content --------------------------------------------------
def tool(args: dict, name: str = "mobile_use") -> str:
    return f"<tool_call>\n{json.dumps({'name': name, 'arguments': args})}\n</tool_call>"


MOBILE = [
    ({"action": "click", "coordinate": [540, 1170]}, Action.click(540, 1170, R)),
    ({"action": "long_press", "coordinate": [540, 1170], "time": 2}, Action.long_press(540, 1170, R, duration_ms=2000)),
    ({"action": "swipe", "coordinate": [540, 1500], "coordinate2": [540, 500]}, Action.swipe((540, 1500), (540, 500), R)),
    ({"action": "type", "text": "weather in Paris"}, Action.type_text("weather in Paris")),
    ({"action": "system_button", "button": "Back"}, BACK),
    ({"action": "system_button", "button": "Home"}, HOME),
    ({"action": "system_button", "button": "Enter"}, ENTER),
    ({"action": "open", "text": "Google Maps"}, Action.open_app("Google Maps")),
    ({"action": "wait", "time": 2}, WAIT),
    ({"action": "terminate", "status": "success"}, Action.finish("complete")),
    ({"action": "terminate", "status": "failure"}, Action.finish("infeasible")),
    ({"action": "answer", "text": "The cheapest flight is $120"}, Action.finish("complete", "The cheapest flight is $120")),
    ({"action": "key", "text": "KEYCODE_ENTER"}, ENTER),
    ({"action": "key", "text": "back"}, BACK),
]


@pytest.mark.parametrize("args,expected", MOBILE)
def test_qwen_mobile_use_tool_call(args, expected):
    text = "I need to continue with the task.\n" + tool(args)
    check(text, expected, "tool_call", frame=R)
    # the same arguments written bare (UI-S1 action_content, UI-R1 / GUI-R1 answers)
    check(json.dumps(args), expected, "qwen_mobile_use", frame=R)


def test_mobile_use_swipe_with_finger_direction():
    check(
        '{"action": "swipe", "direction": "up", "coordinate": [540, 1200]}',
        Action(ActionType.SWIPE, direction="up", point=(540, 1200), frame=R),
        "qwen_mobile_use",
        frame=R,
    )


def test_mobile_use_errors():
    invalid(tool({"action": "system_button", "button": "Menu"}), match="Menu", fmt="tool_call")
    invalid(tool({"action": "key", "text": "volume_up"}), match="volume_up", fmt="tool_call")
    invalid(tool({"action": "click"}), match="needs a coordinate", fmt="tool_call")
    invalid(tool({"action": "swipe", "coordinate": [1, 2]}), match="coordinate2", fmt="tool_call")
    invalid(tool({"action": "fly", "coordinate": [1, 2]}), match="unknown action", fmt="tool_call")
    invalid(tool({"action": "terminate", "status": "meh"}), match="status", fmt="tool_call")


def test_ui_r1_and_gui_r1_answers():
    # UI-R1 / GUI-R1 answer lists use Python quoting
    text = "<think>The search icon is top right.</think><answer>[{'action': 'click', 'coordinate': [978, 132]}]</answer>"
    check(text, Action.click(978, 132), "qwen_mobile_use")
    text = "<answer>[{'action': 'type', 'point': [-100, -100], 'input_text': 'cheap hotels'}]</answer>"
    check(text, Action.type_text("cheap hotels", (-100, -100)), "qwen_mobile_use")
    check("<answer>[{'action': 'scroll', 'direction': 'down'}]</answer>", Action.scroll("down"), "qwen_mobile_use")
    check("<answer>[{'action': 'press_back'}]</answer>", BACK, "qwen_mobile_use")


# -- Qwen2.5-VL computer_use ------------------------------------------------------------------------
COMPUTER = [
    ({"action": "left_click", "coordinate": [1043, 428]}, Action.click(1043, 428, R)),
    ({"action": "double_click", "coordinate": [10, 20]}, Action.click(10, 20, R)),
    ({"action": "right_click", "coordinate": [10, 20]}, Action.long_press(10, 20, R)),
    ({"action": "type", "text": "hello"}, Action.type_text("hello")),
    ({"action": "key", "keys": ["Return"]}, ENTER),
    ({"action": "key", "keys": ["enter"]}, ENTER),
    ({"action": "scroll", "pixels": -300, "coordinate": [800, 600]}, Action.scroll("down", (800, 600), R)),
    ({"action": "scroll", "pixels": 120}, Action.scroll("up")),
    ({"action": "hscroll", "pixels": 50}, Action.scroll("right")),
    ({"action": "wait", "time": 1}, WAIT),
    ({"action": "terminate", "status": "success"}, Action.finish("complete")),
]


@pytest.mark.parametrize("args,expected", COMPUTER)
def test_qwen_computer_use_tool_call(args, expected):
    check(tool(args, "computer_use"), expected, "tool_call", frame=R)


@pytest.mark.parametrize(
    "args,match",
    [
        ({"action": "key", "keys": ["ctrl", "c"]}, "combination"),
        ({"action": "mouse_move", "coordinate": [1, 2]}, "hover"),
        ({"action": "left_click_drag", "coordinate": [1, 2]}, "cursor position"),
        ({"action": "scroll", "pixels": 0}, "0 pixels"),
    ],
)
def test_qwen_computer_use_unmapped(args, match):
    invalid(tool(args, "computer_use"), match=match, fmt="tool_call")


def test_tool_call_arguments_as_json_string():
    text = json.dumps({"name": "mobile_use", "arguments": json.dumps({"action": "click", "coordinate": [7, 8]})})
    check(text, Action.click(7, 8), "tool_call")
    # an OpenAI-style tool_calls entry
    entry = {"id": "call_0", "type": "function", "function": json.loads(text)}
    check(json.dumps([entry]), Action.click(7, 8), "tool_call")


def test_qwen_mobile_agent_thought_action_tool_call():
    text = (
        "Thought: The search bar is at the top; I should tap it.\n"
        'Action: "Tap the search bar"\n'
        '<tool_call>\n{"name": "mobile_use", "arguments": {"action": "click", "coordinate": [540, 160]}}\n</tool_call>\n'
        "<conclusion>Tapped the search bar at (540, 160).</conclusion>"
    )
    res = check(text, Action.click(540, 160, R), "tool_call", frame=R)
    assert res.think == "The search bar is at the top; I should tap it."
    assert res.raw.startswith('{"name": "mobile_use"')


# -- grounding outputs -----------------------------------------------------------------------------
def test_gui_g1_bbox():
    fenced = '```json\n[\n\t{"bbox_2d": [1207, 1024, 1351, 1080], "label": "Enhance Client Relationships"}\n]\n```'
    check(fenced, Action.box_answer((1207, 1024, 1351, 1080), R), "gui_g1_bbox", frame=R)
    check('[{"bbox_2d": [1, 2, 3, 4]}]', Action.box_answer((1, 2, 3, 4)), "gui_g1_bbox")
    check('{"point_2d": [660, 305], "label": "search"}', Action.click(660, 305, R), "gui_g1_bbox", frame=R)
    invalid('[{"bbox_2d": [300, 20, 100, 40]}]', match="inverted", fmt="gui_g1_bbox")
    invalid('[{"bbox_2d": [1, 2, 3]}]', match="4 numbers", fmt="gui_g1_bbox")


def test_bare_coordinates():
    check("[12, 34, 56, 78]", Action.box_answer((12, 34, 56, 78), G), "bare_box", frame=G)
    check("(512, 300)", Action.click(512, 300, G), "bare_point", frame=G)
    check("The element is at [512.5, 300].", Action.click(512.5, 300), "bare_point")
    invalid("[56, 78, 12, 34]", match="inverted", fmt="bare_box")


def test_coordinate_tags():
    check("<|box_start|>(120,340),(460,380)<|box_end|>", Action.box_answer((120, 340, 460, 380), G), "coordinate_tag", frame=G)
    check(
        "<|object_ref_start|>Login<|object_ref_end|><|box_start|>(301,88)<|box_end|>",
        Action.click(301, 88, G),
        "coordinate_tag",
        frame=G,
    )
    check("CLICK <point>[[101, 872]]</point>", Action.click(101, 872, G), "coordinate_tag", frame=G)
    invalid("<point>1 2 3</point>", match="2 numbers (a point) or 4 (a box)", fmt="coordinate_tag")


def test_guienv_json():
    check(
        '{"type": "click", "point": [0.5, 0.25], "frame": "normalized"}',
        Action.click(0.5, 0.25, Frame.NORMALIZED),
        "guienv_json",
        frame=G,
    )
    check('{"type": "click", "point": [5, 25]}', Action.click(5, 25, G), "guienv_json", frame=G)
    check(json.dumps(Action.finish("infeasible").to_dict()), Action.finish("infeasible"), "guienv_json")


# -- UI-TARS ---------------------------------------------------------------------------------------
UITARS = [
    ("Thought: 我需要点击搜索框。\nAction: click(start_box='<|box_start|>(235,512)<|box_end|>')", Action.click(235, 512, G)),
    ("Action: click(start_box='(235,512)')", Action.click(235, 512, G)),
    ("Action: click(start_box='[100, 200, 300, 400]')", Action.click(200, 300, G)),
    ("Action: click(start_box='(300,400,100,200)')", Action.click(200, 300, G)),  # a box's centre either way
    ("Action: click(point='<point>235 512</point>')", Action.click(235, 512, G)),
    ("Action: left_double(start_box='(5,6)')", Action.click(5, 6, G)),
    ("Action: right_single(start_box='(5,6)')", Action.long_press(5, 6, G)),
    ("Action: long_press(start_box='<|box_start|>(10,990)<|box_end|>', time='')", Action.long_press(10, 990, G)),
    ("Action: type(content='It\\'s 5 o\\'clock\\n')", Action.type_text("It's 5 o'clock\n")),
    ("Action: type(content='say \"hi\"')", Action.type_text('say "hi"')),
    ("Action: type(content='don't stop')", Action.type_text("don't stop")),  # unescaped quote
    ("Action: scroll(start_box='(500,500)', direction='down')", Action.scroll("down", (500, 500), G)),
    ("Action: scroll(direction='up')", Action.scroll("up")),
    ("Action: drag(start_box='(100,800)', end_box='(100,200)')", Action.swipe((100, 800), (100, 200), G)),
    ("Action: drag(start_point='<point>1 2</point>', end_point='<point>3 4</point>')", Action.swipe((1, 2), (3, 4), G)),
    ("Action: press_home()", HOME),
    ("Action: press_back()", BACK),
    ("Action: hotkey(key='enter')", ENTER),
    ("Action: open_app(app_name='Chrome')", Action.open_app("Chrome")),
    ("Action: wait()", WAIT),
    ("Action: finished(content='The price is $5 (incl. tax)')", Action.finish("complete", "The price is $5 (incl. tax)")),
    ("Action: finished()", Action.finish("complete")),
    ("Action: call_user()", Action.finish("infeasible")),
]


@pytest.mark.parametrize("text,expected", UITARS)
def test_uitars(text, expected):
    check(text, expected, "uitars", frame=G)


def test_uitars_thought_and_answer():
    res = check(
        "Thought: The list needs scrolling (to see more).\nAction: scroll(direction='down')",
        Action.scroll("down"),
        "uitars",
        frame=G,
    )
    assert res.think == "The list needs scrolling (to see more)."
    assert res.answer == "scroll(direction='down')"


def test_uitars_errors():
    invalid("Action: hotkey(key='ctrl c')", match="combination", fmt="uitars")
    # the thought is reasoning: a broken action is not replaced by coordinates from the thought
    res = invalid("Thought: the icon at (120, 40) looks right.\nAction: click()", match="start_box", fmt="uitars")
    assert res.think == "the icon at (120, 40) looks right."
    invalid("Action: click()", match="start_box", fmt="uitars")
    invalid("Action: scroll(start_box='(1,2)', direction='sideways')", match="direction", fmt="uitars")


# -- wrappers and multiple candidates ---------------------------------------------------------------
def test_lone_closing_think():
    # chat templates that open <think> in the prompt leave only the closing tag in the completion
    res = check('tap the icon at (1, 2)</think>{"action_type": "wait"}', WAIT, "androidcontrol_json")
    assert res.think == "tap the icon at (1, 2)"


def test_think_is_never_mined_for_actions():
    res = invalid("<think>I will click (100, 200)</think>", match="outside the <think> block")
    assert res.think == "I will click (100, 200)"
    invalid("<think>click(start_box='(1,2)') is what I would do", match="outside the <think> block")


def test_action_tags_alfworld():
    res = invalid("<think>The potato is hot now.</think><action>go to sinkbasin 1</action>", match="no action")
    assert res.answer == "go to sinkbasin 1" and res.think == "The potato is hot now."
    res = check("<action>press_back()</action>", BACK, "uitars")
    assert res.answer == "press_back()"


def test_empty_and_multiple_answers():
    invalid("<think>hmm</think><answer>  </answer>", match="empty")
    text = "<answer>no idea</answer> <answer>[100, 200]</answer>"
    res = check(text, Action.click(100, 200), "bare_point")
    assert res.answer == "[100, 200]"
    # with answer tags, text outside them is not searched
    invalid('{"action_type": "wait"} <answer>nothing</answer>', match="no action")


def test_first_valid_candidate_wins():
    two = '[{"action": "click", "coordinate": [1, 2]}, {"action": "type", "text": "x"}]'
    check(two, Action.click(1, 2), "qwen_mobile_use")
    # an invalid first element is skipped
    check('[{"action": "fly"}, {"action": "click", "coordinate": [3, 4]}]', Action.click(3, 4), "qwen_mobile_use")
    # a structured action beats a bare coordinate written earlier in prose
    text = 'The button at (12, 40) is wrong; use {"action_type": "click", "x": 300, "y": 400} instead.'
    check(text, Action.click(300, 400), "androidcontrol_json")
    # prose brackets and apostrophes don't hide a later action
    text = "I'm not sure [maybe] it's the (blue) one: {'action': 'click', 'coordinate': [9, 9]}"
    check(text, Action.click(9, 9), "qwen_mobile_use")
    # an unclosed bracket before the action doesn't swallow it
    check('Click it (the icon {"action_type": "click", "x": 1, "y": 2}', Action.click(1, 2), "androidcontrol_json")


def test_trailing_prose_and_fences():
    text = '```json\n{"action_type": "click", "x": 100, "y": 200}\n```\nThis opens the menu, after which I can choose "Settings".'
    check(text, Action.click(100, 200), "androidcontrol_json")


# -- numbers --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "coord,match",
    [
        ("[NaN, 5]", "finite"),
        ("[Infinity, 5]", "finite"),
        ("[1e999, 5]", "finite"),
        ("[" + "9" * 400 + ", 5]", "finite"),  # an int too large for a float
        ("[2e9, 5]", "out of range"),
        ("[true, 5]", "number"),
        ('["abc", 5]', "number"),
    ],
)
def test_bad_numbers_are_invalid(coord, match):
    invalid('{"action": "click", "coordinate": ' + coord + "}", match=match, fmt="qwen_mobile_use")


def test_negative_and_string_coordinates_are_kept():
    check('{"action": "click", "coordinate": [-5, 10]}', Action.click(-5, 10), "qwen_mobile_use")
    check('{"action": "click", "coordinate": "[15, 25]"}', Action.click(15, 25), "qwen_mobile_use")
    check('{"action_type": "click", "x": "15", "y": 25.5}', Action.click(15, 25.5), "androidcontrol_json")


def test_frame_labels_and_bad_frame():
    assert parse_action("(1, 2)", frame="grid1000") == Action.click(1, 2, G)
    assert parse_action("(1, 2)", frame=Frame.NORMALIZED).frame is Frame.NORMALIZED
    assert parse_action("press_back()", frame=G).frame is Frame.PIXEL  # no coordinates, no frame
    with pytest.raises(ValueError):
        parse_action("(1, 2)", frame="inches")


# -- hostile input ----------------------------------------------------------------------------------
@pytest.mark.parametrize("value", [None, 42, 1.5, b'{"action_type": "wait"}', {"action_type": "wait"}, ["(1, 2)"], object()])
def test_non_string_input(value):
    res = parse_action_detailed(value)
    assert res.action.type is ActionType.INVALID and "must be a string" in res.action.reason
    assert type(value).__name__ in res.action.reason


@pytest.mark.parametrize("unit", ["[", "(", '{"', "{", "<answer>", "<think>", "<|box_start|>", "'", "\\", "click(", "[1,"])
def test_megabyte_of_repeats(unit):
    text = unit * (1_000_000 // len(unit))
    res = parse_action_detailed(text)
    assert res.truncated
    assert isinstance(res.action, Action)
    if not res.action.is_valid:
        assert "truncated" in res.action.reason


def test_truncation():
    action = '{"action_type": "click", "x": 1, "y": 2}'
    res = parse_action_detailed(action + " " * (2 * MAX_CHARS))
    assert res.action == Action.click(1, 2) and res.truncated
    res = parse_action_detailed(" " * MAX_CHARS + action)
    assert res.truncated and "truncated" in res.action.reason


def test_deep_nesting():
    for depth in (50, 5000, 100_000):
        for o, c in ("[]", "{}", "()"):
            res = parse_action_detailed(o * depth + c * depth)
            assert not res.action.is_valid and res.action.reason
    deep = '{"action": "click", "coordinate": [1, 2], "x": ' + "[" * 3000 + "]" * 3000 + "}"
    assert not parse_action(deep).is_valid
    # deep junk beside a real action does not hide it
    assert parse_action("[" * 3000 + "]" * 3000 + ' {"action_type": "wait"}') == WAIT


def test_never_evaluates_code(tmp_path):
    marker = tmp_path / "hacked"
    for text in (
        f"__import__('os').system('touch {marker}')",
        f"[__import__('pathlib').Path('{marker}').touch()]",
        "{'action': 'type', 'text': open('/etc/hostname').read()}",
        "(lambda: 1)()",
    ):
        assert not parse_action(text).is_valid
    # an unquoted argument is read as its literal text, never run
    assert parse_action(f"type(content=__import__('os').system('touch {marker}'))").text.startswith("__import__")
    assert not marker.exists()


# -- properties ---------------------------------------------------------------------------------------
def well_formed(res: ParseResult) -> None:
    assert isinstance(res, ParseResult) and isinstance(res.action, Action)
    if not res.action.is_valid:
        assert res.action.reason
        # the catch-all guards exist for safety; reaching them means a parser bug
        assert not res.action.reason.startswith(("parser error", "unreadable candidate")), res.action.reason
    else:
        for v in (res.action.point, res.action.end, res.action.box):
            assert v is None or all(math.isfinite(u) and abs(u) <= MAX_COORD for u in v)


ALPHABET = st.sampled_from(
    list("[](){}\"'\\,:=<>/|0123456789.-eE ")
    + [
        "NaN",
        "Infinity",
        "action",
        "click",
        "<think>",
        "</think>",
        "<answer>",
        "</answer>",
        "<|box_start|>",
        "<|box_end|>",
        "<point>",
        "Action:",
        "start_box=",
        "coordinate",
    ]
)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=300) | st.lists(ALPHABET, max_size=80).map("".join))
def test_arbitrary_text_never_raises(text):
    well_formed(parse_action_detailed(text))
    assert parse_action(text) == parse_action_detailed(text).action


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(ALPHABET, min_size=1, max_size=12).map("".join), st.integers(1_000, 200_000))
def test_very_long_strings(unit, repeat):
    text = (unit * (repeat // len(unit) + 1))[: max(repeat, 1)]
    res = parse_action_detailed(text)
    well_formed(res)
    assert res.truncated == (len(text) > MAX_CHARS)


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=10)
    | st.sampled_from(["click", "type", "scroll", "down", "Back", "success", "mobile_use"]),
    lambda kids: (
        st.lists(kids, max_size=5)
        | st.dictionaries(
            st.sampled_from(
                [
                    "action",
                    "action_type",
                    "coordinate",
                    "coordinate2",
                    "x",
                    "y",
                    "text",
                    "direction",
                    "name",
                    "arguments",
                    "bbox_2d",
                    "point_2d",
                    "type",
                    "point",
                    "box",
                    "status",
                    "button",
                    "keys",
                    "pixels",
                ]
            )
            | st.text(max_size=6),
            kids,
            max_size=5,
        )
    ),
    max_leaves=25,
)
WRAP = st.sampled_from(
    ["{}", "<answer>{}</answer>", "<tool_call>\n{}\n</tool_call>", "```json\n{}\n```", "x {} y", "<think>a</think>{}"]
)


@settings(max_examples=1200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(JSON, WRAP, st.booleans())
def test_nested_junk_json(value, wrap, python_repr):
    body = repr(value) if python_repr else json.dumps(value)
    well_formed(parse_action_detailed(wrap.replace("{}", body)))


ANY_NUMBER = st.floats() | st.integers(-(10**30), 10**30) | st.sampled_from([10**400, -(10**400), 1e308, 5e-324])


@settings(max_examples=600, deadline=None)
@given(ANY_NUMBER, ANY_NUMBER, st.sampled_from(["qwen", "tool", "ac", "g1", "bare", "uitars"]))
def test_numbers_inside_valid_actions(x, y, form):
    """Every number either comes back exactly or makes the action invalid with a reason."""

    def ok(v):
        try:
            f = float(v)
        except OverflowError:
            return False
        return math.isfinite(f) and abs(f) <= MAX_COORD

    def num(v):
        return (
            json.dumps(v)
            if not isinstance(v, float) or math.isfinite(v)
            else {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}[repr(v)]
        )

    text = {
        "qwen": '{"action": "click", "coordinate": [%s, %s]}',
        "tool": '<tool_call>{"name": "mobile_use", "arguments": {"action": "click", "coordinate": [%s, %s]}}</tool_call>',
        "ac": '{"action_type": "click", "x": %s, "y": %s}',
        "g1": '[{"point_2d": [%s, %s]}]',
        "bare": "[%s, %s]",
        "uitars": "click(start_box='(%s,%s)')",
    }[form] % (num(x), num(y))
    res = parse_action_detailed(text, frame=R)
    well_formed(res)
    if ok(x) and ok(y):
        assert res.action == Action.click(float(x), float(y), R), (text, res.action.reason)
    else:
        assert res.action.type is ActionType.INVALID and res.format is not None, (text, res.action)


FINITE = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)


@settings(max_examples=300, deadline=None)
@given(
    FINITE,
    FINITE,
    FINITE,
    FINITE,
    st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=40),
    st.text(alphabet="abcdefghij ,.!?;", max_size=60),
)
def test_rendered_actions_parse_back(x1, y1, x2, y2, typed, prose):
    """Actions written in each format, surrounded by bracket-free prose, come back exactly."""
    swipe = Action.swipe((x1, y1), (x2, y2), G)
    cases = [
        (prose + tool({"action": "swipe", "coordinate": [x1, y1], "coordinate2": [x2, y2]}) + prose, swipe),
        (prose + f"Action: drag(start_box='({x1!r},{y1!r})', end_box='({x2!r},{y2!r})')", swipe),
        (prose + json.dumps({"action_type": "input_text", "text": typed}) + prose, Action.type_text(typed)),
        (f"Action: type(content={typed!r})", Action.type_text(typed)),
        (f"<answer>{json.dumps({'action': 'type', 'text': typed})}</answer>", Action.type_text(typed)),
        (
            prose + json.dumps([{"bbox_2d": [min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2)]}]),
            Action.box_answer((min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2)), G),
        ),
    ]
    for text, expected in cases:
        got = parse_action(text, frame=G)
        assert got == expected, (text, got)


# -- read_action: the one path from model output to a pixel action --------------------------------
SCREEN = Screen(1080, 2400)


def test_read_action_labels_text_with_frame_and_returns_pixels():
    got = read_action('{"action": "click", "coordinate": [500, 500]}', SCREEN, G)
    assert got == Action.click(540, 1200) and got.frame is P
    rw, rh = SCREEN.resized
    got = read_action(f"<point>{rw} {rh}</point>", SCREEN, R)
    assert got.point == pytest.approx((1080, 2400))
    # coordinate-free actions pass through whatever the frame
    assert read_action('{"action_type": "navigate_back"}', SCREEN, G) == BACK


def test_read_action_other_inputs_carry_their_own_frame():
    norm = Action.click(0.5, 0.25, Frame.NORMALIZED)
    assert read_action(norm, SCREEN, G) == Action.click(540, 600)
    # guienv action JSON (dict or text): its frame field wins over the caller's
    assert read_action(norm.to_dict(), SCREEN, G) == Action.click(540, 600)
    assert read_action(json.dumps(norm.to_dict()), SCREEN, G) == Action.click(540, 600)
    sample = to_space(Action.click(270, 600), SCREEN)
    assert read_action(sample, SCREEN).point == pytest.approx((270, 600), abs=1e-3)
    pixel = Action.click(3, 4)
    assert read_action(pixel, SCREEN, G) is pixel


@pytest.mark.parametrize(
    "output, frame, screen, match",
    [
        ("no action here", P, SCREEN, "no action found"),
        ('{"action": "click", "coordinate": [NaN, 3]}', P, SCREEN, "finite"),
        ('{"action": "click", "coordinate": [1e400, 3]}', G, SCREEN, ""),
        ({"type": "click", "point": [1, 2], "frame": "bogus"}, P, SCREEN, "bad action dict"),
        ({"type": "click"}, P, SCREEN, "bad action dict"),
        (42, P, SCREEN, "cannot interpret int"),
        # a resized frame the screen can't have (aspect ratio > 200): a conversion error
        ("<point>10 10</point>", R, Screen(10000, 10), "cannot convert the resized action to pixels"),
        (Action.click(1e9, 1e9, Frame.RESIZED), P, Screen(10000, 10), "cannot convert"),
    ],
)
def test_read_action_failures_are_invalid_with_a_reason(output, frame, screen, match):
    got = read_action(output, screen, frame)
    assert got.type is ActionType.INVALID
    assert got.reason and match in got.reason, got.reason


def test_read_action_converts_overflow_to_invalid():
    # normalized 1e9 on a 1e6-wide screen is finite; a grid point stays finite too: this pins
    # that the result is re-validated (finite) after conversion rather than trusted
    huge = Action.click(1e308, 1e308, Frame.NORMALIZED)
    got = read_action(huge, Screen(1_000_000, 1_000_000))
    assert got.type is ActionType.INVALID and "cannot convert" in got.reason


def test_read_action_unknown_frame_is_a_caller_bug():
    with pytest.raises(ValueError):
        read_action("click(start_box='(1,2)')", SCREEN, "inches")


def test_as_action_reads_text_in_frame():
    assert as_action("<point>1 2</point>", frame=G) == Action.click(1, 2, G)
    assert as_action("<point>1 2</point>") == Action.click(1, 2)


@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.text(max_size=200) | st.lists(ALPHABET, max_size=60).map("".join),
    st.sampled_from(list(Frame)),
    st.sampled_from([Screen(1080, 2400), Screen(1, 1), Screen(10000, 10), Screen(28, 28)]),
)
def test_read_action_never_raises_and_is_pixel(text, frame, screen):
    got = read_action(text, screen, frame)
    assert isinstance(got, Action)
    if got.is_valid:
        assert got.frame is P
        assert all(math.isfinite(v) for v in (got.point or ()) + (got.end or ()) + (got.box or ()))
    else:
        assert got.reason
