"""SynthApp: a seedable, pure-Pillow generator of synthetic GUI screens, grounding samples and
multi-screen apps with ``k``-step tasks.

Modules: :mod:`~tasks.synthapp.config` (:class:`SynthConfig`), :mod:`~tasks.synthapp.screens`
(one-step grounding screens, samples, ScreenSpot export), :mod:`~tasks.synthapp.app` (apps and
their tasks; built on :mod:`~tasks.synthapp.state`, :mod:`~tasks.synthapp.layout`,
:mod:`~tasks.synthapp.transitions` and :mod:`~tasks.synthapp.oracle`),
:mod:`~tasks.synthapp.render` (widgets and themes) and :mod:`~tasks.synthapp.vocab` (labels).
"""

from tasks.synthapp.app import AppTask, SynthApp, build_task, make_app_task
from tasks.synthapp.config import TARGET_KINDS, SynthConfig, as_config, task_rng
from tasks.synthapp.screens import SynthScreen, export_screenspot, generate_screen, make_grounding_samples, screen_to_sample
from tasks.synthapp.state import AppState, Goal, Move

__all__ = [
    "TARGET_KINDS",
    "AppState",
    "AppTask",
    "Goal",
    "Move",
    "SynthApp",
    "SynthConfig",
    "SynthScreen",
    "as_config",
    "build_task",
    "export_screenspot",
    "generate_screen",
    "make_app_task",
    "make_grounding_samples",
    "screen_to_sample",
    "task_rng",
]
