"""Readers and writers for the ScreenSpot family of GUI grounding benchmarks.

Formats (``fmt``), each read into :class:`~guienv.types.GroundingSample` records whose ``box`` is
``(x1, y1, x2, y2)`` in pixels of the original screenshot:

``v1``      SeeClick's ScreenSpot (Cheng et al., arXiv 2401.10935): ``screenspot_{mobile,desktop,web}.json``,
            records ``{img_filename, bbox: [x, y, w, h] pixels, instruction, data_type, data_source}``,
            images in ``screenspot_imgs/``. The split (mobile/desktop/web) comes from the file name.
``v2``      ScreenSpot-v2 (OS-Atlas, arXiv 2410.23218): ``screenspot_{desktop,mobile,web}_v2.json``, same
            records and box convention, images in ``screenspotv2_image/``.
``pro``     ScreenSpot-Pro (Li et al., 2025, arXiv 2504.07981): ``annotations/<app>_<os>.json``, records ``{img_filename,
            bbox: [x1, y1, x2, y2] pixels, img_size: [w, h], instruction, instruction_cn, id,
            application, platform, ui_type, group}``; ``img_filename`` is relative to ``images/``
            (``"<app>_<os-ish>/<file>.png"``). The split is the annotation file's stem (the app).
``gui-g1``  the GUI-G1 repository's list (arXiv 2505.15810) (``data/*.json``): ``{img_filename, instruction,
            bbox_xyxy: [x1, y1, x2, y2] pixels, img_size: [w, h], data_type, platform}``, images next
            to the JSON file.
``parquet`` Hugging Face exports with the screenshot inline. Modelled on three public exports:
            ``rootsautomation/ScreenSpot`` (v1: ``file_name, bbox, instruction, data_type, data_source,
            image``; ``bbox`` is **normalized** xyxy, e.g. ``[0.9479, 0.1444, 0.9938, 0.2074]``),
            ``HongxinLi/ScreenSpot_v2`` (v2: ``image, bbox`` normalized xyxy, ``instruction,
            data_type, data_source``) and ``lmms-lab/ScreenSpot-Pro`` (Pro fields plus ``image``;
            ``bbox`` pixel xyxy, possibly as a JSON string, with ``img_size``). ``image`` is a struct
            ``{bytes, path}`` (the ``datasets`` Image feature), raw bytes, or a path string.

A path may be a single file or a directory holding any of these (the annotation files and the
image folder are found by their conventional names; ``image_dir`` overrides the image folder).

Box conventions are fixed by the JSON formats. For parquet, ``bbox_format="auto"`` uses the
``guienv`` schema metadata that :func:`write_screenspot_parquet` records, else decides per file:
normalized xyxy when every coordinate of every box lies in [0, 1], pixel xyxy otherwise. Pass
``bbox_format`` (``xyxy``, ``xyxy_norm``, ``xywh``) when a file does not follow that rule.

Sizes come from ``img_size`` (or ``image_width``/``image_height``) when present, else from the image
header, and are checked against the header when both exist: a mismatch is a :class:`DataError`
(no public ScreenSpot release we know of has one; a mismatch means the box is in another frame).

Every bad record raises :class:`~guienv.errors.DataError` naming the file, the record index and the
field; ``on_error="skip"`` instead collects ``(where, reason)`` pairs in ``GroundingDataset.skipped``
and logs their count. Images are only header-checked when loading (``verify_images=True`` decodes
them all); a screenshot that is truncated past its header fails with a ``DataError`` naming the file
and record when it is decoded.

Modules: :mod:`~tasks.screenspot.records` (one record of any format), :mod:`~tasks.screenspot.json_files`
(the JSON formats), :mod:`~tasks.screenspot.parquet` (parquet read and write),
:mod:`~tasks.screenspot.writers` (ScreenSpot directories) and :mod:`~tasks.screenspot.dataset`
(:func:`load_screenspot`). See ``docs/datasets.md``.
"""

from tasks.screenspot.dataset import GroundingDataset, load_screenspot
from tasks.screenspot.parquet import write_screenspot_parquet
from tasks.screenspot.records import BBOX_FORMATS, FORMATS, IMAGE_DIRS, SPLITS, Fmt, OnError
from tasks.screenspot.writers import write_screenspot

__all__ = [
    "BBOX_FORMATS",
    "FORMATS",
    "IMAGE_DIRS",
    "SPLITS",
    "Fmt",
    "GroundingDataset",
    "OnError",
    "load_screenspot",
    "write_screenspot",
    "write_screenspot_parquet",
]
