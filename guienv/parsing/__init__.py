"""Model-output parsers for the grounding action space.

``read_action(output, screen, frame)`` is the one path from model text (or an Action, action JSON,
a space sample) to a **pixel** :class:`~guienv.actions.Action` on a screen; envs, rewards and agents
all use it (:mod:`guienv.parsing.read`). ``parse_action(text, frame=...)`` turns what a GUI model
wrote into one :class:`~guienv.actions.Action` with coordinates labelled ``frame``
(:mod:`guienv.parsing.text`: wrappers and scanning; :mod:`guienv.parsing.formats`: the formats;
:mod:`guienv.parsing.values`: numbers, limits, key names). Neither raises on the text: anything
unreadable becomes ``Action.invalid(reason)``. ``parse_action_detailed`` also reports which format
matched and the extracted think/answer text.

Coordinates are labelled with the caller's ``frame`` (the caller knows the model family,
see :mod:`guienv.frames`: Qwen2.5-VL -> ``resized``, Qwen2-VL / UI-TARS-1.0 / OS-Atlas -> ``grid1000``,
absolute screenshot pixels -> ``pixel``); numbers are never rescaled here. Actions without
coordinates (type, open_app, back, finish, ...) keep the default pixel frame whatever ``frame`` is,
so they compare equal to the same action from any other source.

Wrappers (searched ASCII-case-insensitively):

* ``<think>...</think>`` (also ``<thinking>``, or a lone ``</think>`` when the template opened the
  block) is reasoning: it is returned as ``think`` and never searched for actions.
* ``<answer>...</answer>`` (R1-style GUI models) and ``<action>...</action>`` (verl-agent / ALFWorld):
  when present, only their content is searched (several blocks: in order). The content is returned
  as ``answer`` even when it is no GUI action (e.g. an ALFWorld command), so text envs can use it.
* UI-TARS ``Thought: ... Action: ...``: ``think`` is the thought; only the text after the last
  ``Action:`` is searched (and returned as ``answer``).

Formats (``ParseResult.format``):

* ``androidcontrol_json`` -- AndroidControl / AndroidWorld ``{"action_type": ...}``: ``click`` and
  ``long_press`` (``x``, ``y``), ``double_tap`` (-> click), ``scroll`` (``direction`` = the content
  direction, kept as ``scroll``; optional ``x``, ``y``), ``swipe`` (finger ``direction`` and/or
  ``x``, ``y``), ``input_text``/``type`` (``text``, optional ``x``, ``y``), ``open_app``
  (``app_name``), ``navigate_home``, ``navigate_back``, ``keyboard_enter``, ``wait``, ``status``
  (``goal_status`` complete/infeasible -> finish), ``answer`` (``text`` -> finish with the answer).
  An element ``index`` without coordinates is invalid (it needs the UI tree).
* ``qwen_mobile_use`` -- the argument object of Qwen2.5-VL's ``mobile_use``/``computer_use`` tools
  written bare (UI-S1 ``action_content``, UI-R1 / GUI-R1 lists): ``{"action": "click",
  "coordinate": [x, y]}``. See :func:`_from_action_dict` for every action name.
* ``tool_call`` -- ``{"name": "mobile_use" | "computer_use", "arguments": {...}}``, inside
  ``<tool_call>`` tags or not; ``arguments`` may itself be a JSON string, and an OpenAI
  ``tool_calls`` entry (``{"type": "function", "function": {...}}``) is unwrapped.
* ``gui_g1_bbox`` -- Qwen2.5-VL / GUI-G1 grounding ``[{"bbox_2d": [x1, y1, x2, y2]}]`` -> ``box``;
  ``{"point_2d": [x, y]}`` -> ``click``.
* ``guienv_json`` -- guienv's own action JSON (``Action.to_dict``); its ``frame`` field wins.
* ``uitars`` -- UI-TARS function calls: ``click``/``left_single``/``left_double``/``right_single``/
  ``long_press``/``type``/``scroll``/``drag``/``swipe``/``hotkey``/``press_home``/``press_back``/
  ``press_enter``/``open_app``/``wait``/``finished``/``call_user``, with positions given as
  ``'(x,y)'``, ``'<|box_start|>(x,y)<|box_end|>'``, ``'<point>x y</point>'`` or a 4-number box
  (its centre is used).
* ``coordinate_tag`` -- bare ``<|box_start|>(x1,y1),(x2,y2)<|box_end|>`` (Qwen2-VL / OS-Atlas),
  Qwen-VL's ``<box>(x1,y1),(x2,y2)</box>`` (SeeClick's base model; 0-1000 grid, so ``grid1000``),
  ``<point>x y</point>`` or ``<bbox>x1 y1 x2 y2</bbox>``: 2 numbers -> click, 4 -> box (a box is
  read as a box, never as its first corner; an inverted one is invalid).
* ``bare_box`` ``[x1, y1, x2, y2]`` -> box; ``bare_point`` ``[x, y]`` or ``(x, y)`` -> click; an
  answer that is *only* 2 or 4 comma-separated numbers without brackets (SeeClick's ``0.67, 0.97``,
  ``normalized`` frame) reads the same way. Numbers inside prose are not read.
* ``gui_g1`` strict reading (not part of this lenient parser): :mod:`guienv.parsing.gui_g1`
  reproduces GUI-G1's own answer reader for its reward preset.

Decisions (documented because published code differs):

* **Several candidates**: the first valid action in text order wins, except that bare number
  tuples (``bare_point``/``bare_box``) are only used when no structured form yields a valid action
  (prose like "the icon at (12, 40)" must not beat a JSON action written after it). Lists of
  actions give their first valid element.
* **Scroll directions** are the content direction of AndroidControl (arXiv 2406.03679;
  "scroll down" shows what is below; the finger moves up). UI-TARS' ``scroll(direction=...)`` is
  read the same way (its prompt: "Show more information on the `direction` side"), and so is
  the mouse wheel of ``computer_use`` (``pixels > 0`` scrolls up, ``< 0`` down; ``hscroll``:
  ``> 0`` right, ``< 0`` left, an assumption: Qwen documents no sign for it). ``swipe``/``drag``
  directions and point pairs are the **finger's** path.
* **Mouse/keyboard -> touch**: left/double/triple/middle clicks -> ``click``; right click ->
  ``long_press`` (the touch gesture that opens a context menu); ``key``/``hotkey`` and
  ``system_button`` map Enter/Return -> ``keyboard_enter``, Back -> ``navigate_back``, Home ->
  ``navigate_home``; other keys, key combinations, ``Menu``, ``mouse_move`` (a hover) and
  ``left_click_drag`` (starts at the unknown cursor position) are invalid with a reason.
  ``terminate`` success/failure -> ``finish`` complete/infeasible; ``answer`` -> ``finish`` with
  the answer; UI-TARS ``call_user()`` -> ``finish`` infeasible. Wait times are dropped (``wait``
  has no argument); long-press times (seconds) become ``duration_ms``.
* **Numbers**: booleans, NaN, +-inf, and magnitudes above ``MAX_COORD`` (1e9, far beyond any
  screen; keeps later frame conversions finite) make the action invalid. Negative coordinates
  are kept: they are off-screen points, which envs and rewards score as misses.
* **Boxes** must satisfy ``x1 <= x2`` and ``y1 <= y2``, like :class:`Action` and the GUI-G1 reward
  (an inverted box answer is invalid, not reordered). A box given where a point is expected
  (UI-TARS ``start_box``) stands for its centre, in either corner order.
* A format that was recognised but whose action is invalid is still named in ``format``
  (UI-S1's reward tells "parsable, wrong" from "unparsable"); ``format`` is ``None`` when nothing
  was recognised.

Hostile text: at most ``MAX_CHARS`` characters are read (the rest is dropped; ``truncated`` says
so, and so does the reason of an invalid result); brackets are matched by one linear scan (no
regular expression that can backtrack); at most ``MAX_CANDIDATES`` bracketed spans are tried and
spans nested deeper than ``MAX_DEPTH`` are skipped before ``json``/``ast`` see them;
``ast.literal_eval``/``ast.parse`` only read literals (nothing is evaluated or executed), and every
candidate is parsed inside a guard that turns any exception (``RecursionError``, ``MemoryError``,
...) into a skipped candidate.
"""

from guienv.parsing.gui_g1 import read_gui_g1_box
from guienv.parsing.read import as_action, read_action
from guienv.parsing.text import ParseResult, parse_action, parse_action_detailed
from guienv.parsing.values import MAX_CHARS, MAX_COORD

__all__ = [
    "MAX_CHARS",
    "MAX_COORD",
    "ParseResult",
    "as_action",
    "parse_action",
    "parse_action_detailed",
    "read_action",
    "read_gui_g1_box",
]
