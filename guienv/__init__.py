"""guienv: Gymnasium environments, a grounding action space, rewards and training for GUI agents.

``import guienv`` registers the ``guienv/`` env ids with Gymnasium.
"""

from guienv.actions import Action, ActionType, action_space, from_space, scroll_to_swipe, to_space
from guienv.errors import DataError
from guienv.frames import Frame, Resize, Screen, convert_box, convert_point, smart_resize
from guienv.parsing import as_action, parse_action, read_action
from guienv.registration import ENVS, register_envs

__version__ = "0.1.0"

register_envs()

__all__ = [
    "Action",
    "ActionType",
    "DataError",
    "ENVS",
    "Frame",
    "Resize",
    "Screen",
    "action_space",
    "as_action",
    "parse_action",
    "read_action",
    "convert_box",
    "convert_point",
    "from_space",
    "scroll_to_swipe",
    "smart_resize",
    "to_space",
]
