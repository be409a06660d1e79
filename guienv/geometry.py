"""Screen geometry shared by envs, rewards and scoring: points and ``(x1, y1, x2, y2)`` boxes."""

from __future__ import annotations

from guienv.actions import Box4, Point

__all__ = ["point_in_box"]


def point_in_box(point: Point | None, box: Box4) -> bool:
    """ScreenSpot's hit test and GUI-G1's R_hit: ``point`` inside ``box``, bounds inclusive."""
    if point is None:
        return False
    x, y = point
    x1, y1, x2, y2 = box
    return x1 <= x <= x2 and y1 <= y <= y2
