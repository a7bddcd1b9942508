"""Synthetic fixtures for the GUI-agent tasks, in the exact layout of their public data.

* :func:`write_screenspot_fixture` - ``rootsautomation/ScreenSpot``: ``data/test-00000-of-00001.parquet``
  with the hub features ``file_name`` (str), ``bbox`` (sequence of float64: ``[x1, y1, x2, y2]``
  fractions of the image), ``instruction``, ``data_type`` (``text``/``icon``), ``data_source``,
  ``image`` (``{"bytes", "path"}`` PNG). Screenshots are plain backgrounds with coloured
  rectangles ("elements"); two instructions share each screenshot, as on the hub. Optional bad
  rows: an undecodable image and a bbox of three numbers.
* :func:`write_aitz_fixture` - the AITZ release: ``<root>/test/<subset>/<EPISODE>/<EPISODE>.json``
  (a list of steps with the release's fields: ``episode_id``, ``episode_length``, ``step_id``,
  ``instruction``, ``ui_positions`` / ``ui_text`` / ``ui_types`` (JSON strings; positions
  ``[y, x, h, w]`` pixels), ``result_action_type`` (AitW code), ``result_action_text``,
  ``result_touch_yx`` / ``result_lift_yx`` (JSON ``[y, x]`` fractions), ``image_path``,
  ``image_full_path``, ``coat_screen_desc``, ``coat_action_think``, ``coat_action_desc``,
  ``coat_action_result``) next to ``<EPISODE>_<step>.png``.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

#: (data_source, data_type) of the fixture rows: every platform x element type once or twice
SCREENSPOT_SOURCES = [
    ("ios", "text"), ("android", "icon"), ("macos", "text"), ("windows", "icon"),
    ("shop", "text"), ("forum", "icon"), ("gitlab", "text"), ("tool", "icon"),
]  # fmt: skip
_SIZES = [(360, 640), (640, 400), (480, 320), (400, 400)]
_COLOURS = [(215, 35, 35), (40, 160, 70), (40, 80, 215), (230, 195, 30)]


def _png(size: tuple[int, int], boxes: list[tuple[int, int, int, int]]) -> bytes:
    from PIL import Image, ImageDraw

    img = Image.new("RGB", size, (240, 240, 235))
    draw = ImageDraw.Draw(img)
    for k, (x1, y1, x2, y2) in enumerate(boxes):
        draw.rectangle([x1, y1, x2 - 1, y2 - 1], fill=_COLOURS[k % len(_COLOURS)])
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def write_screenspot_fixture(root: str | Path, bad_rows: bool = False) -> dict[str, Any]:
    """Write a ScreenSpot fixture; returns ``{"root", "rows"}`` where each row also carries
    ``size`` (width, height) and ``box_px`` (the target in pixels) for the tests."""
    import datasets

    root = Path(root)
    rows: list[dict[str, Any]] = []
    for k in range(0, len(SCREENSPOT_SOURCES), 2):
        size = _SIZES[(k // 2) % len(_SIZES)]
        w, h = size
        boxes = [
            (w // 10, h // 8, w // 10 + w // 4, h // 8 + h // 10),
            (w // 2, h // 2, w // 2 + w // 5, h // 2 + h // 6),
        ]
        png = _png(size, boxes)
        for j in range(2):
            source, dtype = SCREENSPOT_SOURCES[k + j]
            x1, y1, x2, y2 = boxes[j]
            rows.append(
                {
                    "file_name": f"{source}_{k // 2:03d}.png",
                    "bbox": [x1 / w, y1 / h, x2 / w, y2 / h],
                    "instruction": f"open the {'first' if j == 0 else 'second'} panel on {source}",
                    "data_type": dtype,
                    "data_source": source,
                    "image": {"bytes": png, "path": None},
                    "size": size,
                    "box_px": (float(x1), float(y1), float(x2), float(y2)),
                }
            )
    if bad_rows:
        good = rows[0]
        rows.append(
            {
                **good,
                "file_name": "bad_image.png",
                "image": {"bytes": b"\x89PNG\r\n\x1a\nbroken", "path": None},
            }
        )
        rows.append({**good, "file_name": "bad_bbox.png", "bbox": [0.1, 0.2, 0.3]})
    features = datasets.Features(
        {
            "file_name": datasets.Value("string"),
            "bbox": datasets.Sequence(datasets.Value("float64")),
            "instruction": datasets.Value("string"),
            "data_type": datasets.Value("string"),
            "data_source": datasets.Value("string"),
            "image": datasets.Image(),
        }
    )
    datasets.utils.logging.disable_progress_bar()
    out = root / "data" / "test-00000-of-00001.parquet"
    out.parent.mkdir(parents=True, exist_ok=True)
    table = {name: [r[name] for r in rows] for name in features}
    datasets.Dataset.from_dict(table, features=features).to_parquet(str(out))
    return {"root": root, "rows": rows}


#: the fixture episodes: (subset, goal, steps); a step is (coat_action_desc, AitW action type,
#: touch_yx, lift_yx, typed text). Screens are 270 x 600 px with three elements.
AITZ_SCREEN = (270, 600)
AITZ_ELEMENTS = [[54, 17, 30, 120], [300, 100, 40, 150], [574, 51, 15, 60]]  # [y, x, h, w] pixels
AITZ_EPISODES: list[tuple[str, str, str, list[tuple[str, int, list[float], list[float], str]]]] = [
    ("general", "GENERAL-1001", "search for the weather in Paris", [
        ("press the home button", 6, [-1.0, -1.0], [-1.0, -1.0], ""),
        ("click on the search bar at the top of the screen", 4, [0.115, 0.285], [0.115, 0.285], ""),
        ('type "weather in Paris"', 3, [-1.0, -1.0], [-1.0, -1.0], "weather in Paris"),
        ("press enter", 7, [-1.0, -1.0], [-1.0, -1.0], ""),
        ("stop and set the query as completed", 10, [-1.0, -1.0], [-1.0, -1.0], ""),
    ]),
    ("web_shopping", "WEB_SHOPPING-2002", "add a blue mug to the cart on amazon", [
        ("scroll down", 4, [0.8, 0.5], [0.2, 0.5], ""),
        ("click on the add to cart button in the middle of the screen", 4, [0.533, 0.648], [0.533, 0.648], ""),
        ("press back", 5, [-1.0, -1.0], [-1.0, -1.0], ""),
    ]),
]  # fmt: skip


def write_aitz_fixture(root: str | Path, split: str = "test", bad: bool = False) -> dict[str, Any]:
    """Write the fixture episodes (and, with ``bad``, an episode whose first screenshot is missing
    and whose second step has an unknown action); returns ``{"root", "steps"}`` with one dict per
    step (``id``, ``gold`` description, ``size``)."""
    root = Path(root)
    episodes = list(AITZ_EPISODES)
    if bad:
        episodes.append(("install", "INSTALL-3003", "install the clock app", [
            ("click on the install button", 4, [0.115, 0.285], [0.115, 0.285], ""),
            ("wiggle the phone", 4, [0.5, 0.5], [0.5, 0.5], ""),
        ]))  # fmt: skip
    positions = json.dumps(AITZ_ELEMENTS)
    boxes = [(x, y, x + w, y + h) for y, x, h, w in AITZ_ELEMENTS]
    steps_out = []
    for subset, episode, goal, steps in episodes:
        folder = root / split / subset / episode
        folder.mkdir(parents=True, exist_ok=True)
        records = []
        for k, (desc, code, touch, lift, text) in enumerate(steps):
            image_rel = f"{subset}/{episode}/{episode}_{k}.png"
            if not (bad and episode.startswith("INSTALL") and k == 0):
                (root / split / image_rel).write_bytes(_png(AITZ_SCREEN, boxes))
            records.append(
                {
                    "episode_id": episode.split("-")[1],
                    "episode_length": len(steps),
                    "step_id": k,
                    "instruction": goal,
                    "ui_positions": positions,
                    "ui_text": json.dumps(["Search", "Add to cart", ""]),
                    "ui_types": json.dumps(["TEXT", "TEXT", "ICON_NAV_BAR_RECT"]),
                    "result_action_type": code,
                    "result_action_text": text,
                    "result_touch_yx": json.dumps(touch),
                    "result_lift_yx": json.dumps(lift),
                    "image_path": image_rel,
                    "image_full_path": f"android-in-the-wild/aitw_with_gpt/{split}/{image_rel}",
                    "coat_screen_desc": "A phone screen.",
                    "coat_action_think": "Think about the next step.",
                    "coat_action_desc": desc,
                    "coat_action_result": "The screen changes.",
                }
            )
            steps_out.append({"id": f"{episode.split('-')[1]}-{k}", "gold": desc, "size": AITZ_SCREEN,
                              "touch_yx": touch, "text": text, "subset": subset})  # fmt: skip
        (folder / f"{episode}.json").write_text(json.dumps(records, indent=1))
    return {"root": root, "steps": steps_out}
