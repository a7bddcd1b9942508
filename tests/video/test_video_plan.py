"""Frame planning against hand-computed indices (qwen-vl-utils semantics), no I/O.

Expected index lists were worked out by hand from ``round(first + (last - first) * i / (n - 1))``
(no ties occur for an even n and integer bounds), counts from ``smart_nframes``.
"""

from __future__ import annotations

import random

import pytest

from evalkit.errors import InputError, UsageError
from evalkit.media.video import (
    FramePlan,
    VideoSampling,
    _linspace_round,
    _linspace_round_exact,
    plan_frames,
    resize_frame_budget,
    smart_resize,
)

QWEN2 = VideoSampling()  # fps=2, min 4, max 768, round


def test_defaults_are_qwen2_vl() -> None:
    s = VideoSampling()
    assert (s.fps, s.nframes, s.mode) == (2.0, None, "fps")
    assert (s.min_frames, s.max_frames, s.frame_factor) == (4, 768, 2)
    assert (s.min_pixels, s.max_pixels, s.total_pixels, s.image_factor) == (
        128 * 28 * 28,
        None,  # not given: the budget comes from total_pixels, capped at 768 * 28 * 28
        24576 * 28 * 28,
        28,
    )
    assert s.max_pixels_rule == "replace"  # qwen-vl-utils <= 0.0.8 (the Qwen2-VL release)
    assert VideoSampling(nframes=16).fps is None and VideoSampling(nframes=16).mode == "nframes"


# --- fps mode ---------------------------------------------------------------------------------


def test_fps_mode_ten_seconds_at_30fps() -> None:
    plan = plan_frames(300, 30.0, QWEN2)  # 10 s -> 20 frames
    assert plan.indices == (
        0,
        16,
        31,
        47,
        63,
        79,
        94,
        110,
        126,
        142,
        157,
        173,
        189,
        205,
        220,
        236,
        252,
        268,
        283,
        299,
    )
    assert plan.timestamps[1] == pytest.approx(16 / 30)
    assert plan.clip == (0, 299) and plan.notes == ()
    assert plan.sample_fps == pytest.approx(2.0)


def test_fps_mode_min_frames_clamp() -> None:
    plan = plan_frames(30, 30.0, QWEN2)  # 1 s -> 2 frames, raised to min_frames 4
    assert plan.indices == (0, 10, 19, 29)


def test_fps_mode_max_frames_clamp_long_video() -> None:
    plan = plan_frames(2400, 2.0, QWEN2)  # 20 min at 2 fps -> 2400 wanted, capped at 768
    assert plan.nframes == 768
    assert plan.indices[:6] == (0, 3, 6, 9, 13, 16) and plan.indices[-3:] == (2393, 2396, 2399)
    assert plan_frames(54_000, 30.0, QWEN2).nframes == 768  # 30 min at 30 fps


def test_fps_mode_round_vs_floor() -> None:
    # 81 frames at 30 fps = 2.7 s -> 5.4 frames: qwen-vl-utils <= 0.0.8 rounds to 6, >= 0.0.9 floors to 4
    assert plan_frames(81, 30.0, QWEN2).indices == (0, 16, 32, 48, 64, 80)
    assert plan_frames(81, 30.0, VideoSampling(rounding="floor")).indices == (0, 27, 53, 80)


def test_fps_mode_even_count_from_odd_estimate() -> None:
    # 7 s at 1 fps, fps=1 -> 7 frames wanted -> round(3.5)*2 = 8 (ties to even), but only 7 exist -> 6
    plan = plan_frames(7, 1.0, VideoSampling(fps=1.0))
    assert plan.nframes == 6 and plan.nframes % 2 == 0
    assert plan_frames(9, 1.0, VideoSampling(fps=1.0, max_frames=100)).nframes == 8


def test_fps_mode_low_rate_video_capped_at_frame_count() -> None:
    plan = plan_frames(10, 1.0, QWEN2)  # 10 s at 1 fps wants 20 frames, has 10
    assert plan.indices == tuple(range(10)) and plan.notes == ()


def test_fps_mode_video_shorter_than_min_frames() -> None:
    assert plan_frames(3, 30.0, QWEN2).indices == (0, 2)  # limited to an even count, as qwen-vl-utils


def test_fps_mode_custom_rate() -> None:
    plan = plan_frames(300, 30.0, VideoSampling(fps=0.5))  # 10 s at 0.5 fps -> 5 -> min 4... round(2.5)*2=4
    assert plan.indices == (0, 100, 199, 299)


# --- nframes mode -----------------------------------------------------------------------------


def test_nframes_mode() -> None:
    plan = plan_frames(300, 30.0, VideoSampling(nframes=16))
    assert plan.indices == (0, 20, 40, 60, 80, 100, 120, 140, 159, 179, 199, 219, 239, 259, 279, 299)


@pytest.mark.parametrize(
    ("requested", "expected"), [(2, 2), (3, 4), (5, 4), (7, 8), (13, 12), (15, 16), (16, 16)]
)
def test_nframes_rounded_to_even_like_python_round(requested: int, expected: int) -> None:
    assert plan_frames(300, 30.0, VideoSampling(nframes=requested)).nframes == expected


def test_nframes_ignores_min_max_frames() -> None:
    assert plan_frames(3000, 30.0, VideoSampling(nframes=2, min_frames=4)).indices == (0, 2999)
    assert plan_frames(3000, 30.0, VideoSampling(nframes=20, max_frames=8)).nframes == 20


# --- short videos ------------------------------------------------------------------------------


def test_short_clip_limit_default() -> None:
    plan = plan_frames(10, 10.0, VideoSampling(nframes=16))  # 1 s clip, 16 wanted
    assert plan.indices == tuple(range(10))
    assert any("sampled 10" in note for note in plan.notes)


def test_short_clip_repeat() -> None:
    plan = plan_frames(10, 10.0, VideoSampling(nframes=16, short_video="repeat"))
    assert plan.indices == (0, 1, 1, 2, 2, 3, 4, 4, 5, 5, 6, 7, 7, 8, 8, 9)
    assert plan.notes


def test_short_clip_error() -> None:
    with pytest.raises(InputError, match="fewer than the 16 requested"):
        plan_frames(10, 10.0, VideoSampling(nframes=16, short_video="error"))
    # fps mode caps silently under 'error' too (qwen-vl-utils does), unless < frame_factor remain
    assert plan_frames(3, 30.0, VideoSampling(short_video="error")).indices == (0, 2)
    with pytest.raises(InputError):
        plan_frames(1, 30.0, VideoSampling(short_video="error"))


def test_single_frame_video_repeated_to_frame_factor() -> None:
    plan = plan_frames(1, 25.0, QWEN2)
    assert plan.indices == (0, 0) and plan.notes


def test_odd_frame_count_limit_is_even() -> None:
    assert plan_frames(7, 10.0, VideoSampling(nframes=16)).indices == (0, 1, 2, 4, 5, 6)


# --- clip bounds (calculate_video_frame_range) -------------------------------------------------


def test_clip_nframes() -> None:
    plan = plan_frames(300, 30.0, VideoSampling(nframes=8), start_s=2.0, end_s=5.0)
    assert plan.clip == (60, 150)
    assert plan.indices == (60, 73, 86, 99, 111, 124, 137, 150)
    assert plan.timestamps[0] == pytest.approx(2.0)  # timestamps count from the video's start


def test_clip_fps_mode_counts_clip_frames() -> None:
    plan = plan_frames(300, 30.0, QWEN2, start_s=2.0, end_s=5.0)  # 91 frames -> 6.07 -> 6
    assert plan.indices == (60, 78, 96, 114, 132, 150)


def test_clip_start_rounds_up_end_rounds_down() -> None:
    plan = plan_frames(300, 30.0, VideoSampling(nframes=2), start_s=1.01, end_s=4.99)
    assert plan.clip == (31, 149)


def test_clip_end_beyond_video_is_clamped_with_note() -> None:
    plan = plan_frames(300, 30.0, VideoSampling(nframes=4), start_s=8.0, end_s=20.0)
    assert plan.indices == (240, 260, 279, 299)
    assert any("beyond" in note for note in plan.notes)


def test_clip_only_start_or_only_end() -> None:
    assert plan_frames(300, 30.0, QWEN2, start_s=9.0).indices == (270, 280, 289, 299)
    assert plan_frames(300, 30.0, QWEN2, end_s=1.0).indices == (0, 10, 20, 30)


def test_clip_negative_start_clamped() -> None:
    plan = plan_frames(300, 30.0, VideoSampling(nframes=2), start_s=-3.0, end_s=1.0)
    assert plan.indices == (0, 30) and plan.notes


@pytest.mark.parametrize(("start", "end"), [(5.0, 5.0), (6.0, 5.0), (12.0, None), (10.0, 30.0), (4.99, 5.0)])
def test_bad_clip_bounds_raise(start: float, end: float | None) -> None:
    with pytest.raises(InputError):
        plan_frames(300, 30.0, QWEN2, start_s=start, end_s=end)


def test_no_frames_or_rate() -> None:
    with pytest.raises(InputError):
        plan_frames(0, 30.0, QWEN2)
    with pytest.raises(InputError):
        plan_frames(10, 0.0, QWEN2)


# --- pixel budget --------------------------------------------------------------------------------


def test_frame_pixel_budget() -> None:
    assert plan_frames(300, 30.0, VideoSampling(nframes=16)).frame_pixels == (100352, 602112)
    # 768 frames: 24576*784*2/768 = 50176 < int(1.05 * 128*784) = 105369
    assert plan_frames(2400, 2.0, QWEN2).frame_pixels == (100352, 105369)
    assert plan_frames(3000, 30.0, VideoSampling(nframes=100)).frame_pixels[1] == pytest.approx(385351.68)


def test_resize_frame_budget() -> None:
    assert resize_frame_budget(1080, 1920, QWEN2, 16) == (560, 1008)
    assert resize_frame_budget(1080, 1920, QWEN2, 768) == (224, 420)
    assert resize_frame_budget(48, 64, QWEN2, 16) == (280, 392)  # small frames are enlarged to min_pixels
    with pytest.raises(InputError):
        smart_resize(10, 3000, 28, 100, 10_000)


# --- config --------------------------------------------------------------------------------------


def test_sampling_validation() -> None:
    with pytest.raises(UsageError):
        VideoSampling(fps=2.0, nframes=8)
    with pytest.raises(UsageError):
        VideoSampling(nframes=1)  # rounds to 0 frames
    with pytest.raises(UsageError):
        VideoSampling(fps=-1.0)
    with pytest.raises(UsageError):
        VideoSampling(min_frames=10, max_frames=4)
    with pytest.raises(UsageError):
        VideoSampling(short_video="skip")  # type: ignore[arg-type]


def test_from_config_and_to_dict() -> None:
    s = VideoSampling.from_config({"nframes": 32, "max_pixels": 360 * 420})
    assert s.mode == "nframes" and s.max_pixels == 360 * 420
    assert VideoSampling.from_config(s.to_dict()) == s
    assert VideoSampling.from_config(None) == VideoSampling()
    with pytest.raises(UsageError, match="unknown"):
        VideoSampling.from_config({"fsp": 1.0})


def test_plan_is_frozen() -> None:
    plan = plan_frames(300, 30.0, QWEN2)
    assert isinstance(plan, FramePlan)
    with pytest.raises(AttributeError):
        plan.indices = ()  # type: ignore[misc]


# --- exactness against torch / qwen-vl-utils ------------------------------------------------


def test_linspace_matches_torch_float32() -> None:
    """Including long videos where float32 near-ties differ from exact arithmetic."""
    torch = pytest.importorskip("torch")
    rng = random.Random(7)
    cases = [
        (0, 215_999, 768),
        (0, 107_999, 768),
        (1234, 98_765, 322),
        (0, 9, 16),
        (0, 5, 3),
        (0, 1, 64),
        (7, 9, 200),
    ]
    cases += [(0, rng.randint(1000, 400_000), rng.randrange(2, 770, 2)) for _ in range(150)]
    cases += [
        (s, s + rng.randint(1, 3000), rng.randint(1, 64)) for s in (rng.randint(0, 5000) for _ in range(50))
    ]
    cases += [(rng.randint(0, 100), rng.randint(100, 400_000), rng.randrange(2, 770, 2)) for _ in range(150)]
    for start, end, steps in cases:
        expected = torch.linspace(start, end, steps).round().long().tolist()
        assert _linspace_round(start, end, steps) == expected, (start, end, steps)
        assert _linspace_round_exact(start, end, steps) == expected, (start, end, steps)


def test_matches_installed_qwen_vl_utils() -> None:
    """Oracle check when qwen-vl-utils is importable (rounding and clip rules follow its version)."""
    import importlib.metadata

    qvu = pytest.importorskip("qwen_vl_utils.vision_process")
    import torch

    version = tuple(int(x) for x in importlib.metadata.version("qwen-vl-utils").split(".")[:3])
    rounding = "round" if version <= (0, 0, 8) else "floor"
    has_clip = hasattr(qvu, "calculate_video_frame_range")
    rng = random.Random(3)
    for _ in range(300):
        total = rng.randint(2, 60_000)
        fps = rng.choice([1.0, 2.0, 10.0, 24.0, 25.0, 30000 / 1001, 30.0, 60.0])
        ele: dict = (
            {"nframes": rng.randint(2, 200)} if rng.random() < 0.3 else {"fps": rng.choice([0.5, 1.0, 2.0])}
        )
        if has_clip and rng.random() < 0.4:
            ele["video_start"] = rng.uniform(0, total / fps / 2)
            ele["video_end"] = ele["video_start"] + rng.uniform(1.0, total / fps)
        sampling = VideoSampling(
            fps=ele.get("fps"), nframes=ele.get("nframes"), rounding=rounding, short_video="error"
        )
        try:
            first, last, count = (
                qvu.calculate_video_frame_range(ele, total, fps) if has_clip else (0, total - 1, total)
            )
            n = qvu.smart_nframes(ele, total_frames=count, video_fps=fps)
        except ValueError:
            with pytest.raises(InputError):
                plan_frames(total, fps, sampling, ele.get("video_start"), ele.get("video_end"))
            continue
        expected = torch.linspace(first, last, n).round().long().tolist()
        plan = plan_frames(total, fps, sampling, ele.get("video_start"), ele.get("video_end"))
        assert list(plan.indices) == expected, (total, fps, ele)
        budget = max(min(qvu.VIDEO_MAX_PIXELS, 24576 * 28 * 28 / n * 2), int(qvu.VIDEO_MIN_PIXELS * 1.05))
        assert plan.frame_pixels[1] == budget


def test_import_is_light() -> None:
    """evalkit's start-up must not pay for PyAV / decoders: they are imported inside functions."""
    import subprocess
    import sys

    code = (
        "import sys, evalkit.media.video\n"
        "heavy = [m for m in ('av', 'torch', 'torchcodec', 'decord', 'numpy', 'PIL') if m in sys.modules]\n"
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# --- explicit max_pixels: qwen-vl-utils <= 0.0.8 ("replace") vs >= 0.0.9 ("min") ----------------


def _ref_budget_008(n: int, min_pixels: int, total_pixels: int, max_pixels: int | None) -> float:
    """qwen-vl-utils 0.0.8 (the release Qwen2-VL's README installed), as documented: the
    total_pixels budget of a frame, which an explicit max_pixels *replaces*."""
    derived = max(min(768 * 28 * 28, total_pixels / n * 2), int(min_pixels * 1.05))
    return derived if max_pixels is None else max_pixels


def _ref_budget_009(n: int, min_pixels: int, total_pixels: int, max_pixels: int | None) -> float:
    """qwen-vl-utils >= 0.0.9: the smaller of the explicit max_pixels and that budget."""
    derived = max(min(768 * 28 * 28, total_pixels / n * 2), int(min_pixels * 1.05))
    return derived if max_pixels is None else min(max_pixels, derived)


def _random_frame_cases(seed: int, count: int) -> list[tuple[int, int, int, int, int, int | None]]:
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        n = rng.randrange(2, 770, 2)
        min_pixels = rng.choice([4 * 28 * 28, 128 * 28 * 28, 256 * 28 * 28])
        total = rng.choice([24576 * 28 * 28, 8192 * 28 * 28, 1024 * 28 * 28])
        explicit = rng.choice([None, 256 * 28 * 28, 360 * 420, 768 * 28 * 28, 1280 * 28 * 28])
        if explicit is not None and explicit < min_pixels:
            explicit = min_pixels
        h, w = rng.choice([(240, 320), (480, 640), (720, 1280), (1080, 1920), (1920, 1080), (37, 900)])
        out.append((h, w, n, min_pixels, total, explicit))
    return out


@pytest.mark.parametrize("rule", ["replace", "min"])
def test_explicit_max_pixels_rules_match_the_references(rule: str) -> None:
    ref = _ref_budget_008 if rule == "replace" else _ref_budget_009
    differ = 0
    for h, w, n, min_pixels, total, explicit in _random_frame_cases(11, 2000):
        s = VideoSampling(
            nframes=n, min_pixels=min_pixels, total_pixels=total, max_pixels=explicit, max_pixels_rule=rule
        )  # type: ignore[arg-type]
        budget = ref(n, min_pixels, total, explicit)
        assert plan_frames(10_000, 30.0, s).frame_pixels == (min_pixels, budget)
        assert resize_frame_budget(h, w, s, n) == smart_resize(h, w, 28, min_pixels, budget)
        other = _ref_budget_009 if rule == "replace" else _ref_budget_008
        differ += smart_resize(h, w, 28, min_pixels, budget) != smart_resize(
            h, w, 28, min_pixels, other(n, min_pixels, total, explicit)
        )
    assert differ > 50  # the two releases really give different frame sizes on this set


def test_no_explicit_max_pixels_is_the_same_in_both_rules() -> None:
    for h, w, n, min_pixels, total, _ in _random_frame_cases(12, 500):
        a = VideoSampling(nframes=n, min_pixels=min_pixels, total_pixels=total, max_pixels_rule="replace")
        b = VideoSampling(nframes=n, min_pixels=min_pixels, total_pixels=total, max_pixels_rule="min")
        assert resize_frame_budget(h, w, a, n) == resize_frame_budget(h, w, b, n)


def test_max_pixels_rule_is_validated() -> None:
    with pytest.raises(UsageError, match="max_pixels_rule"):
        VideoSampling(max_pixels_rule="newest")  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="max_pixels"):
        VideoSampling(max_pixels=0)
    with pytest.raises(UsageError, match="min_pixels"):
        VideoSampling(min_pixels=1000, max_pixels=10)


def test_min_rule_matches_installed_qwen_vl_utils_fetch_video(monkeypatch: pytest.MonkeyPatch) -> None:
    """The installed qwen-vl-utils (>= 0.0.9) resizes decoded frames exactly as ``max_pixels_rule="min"``
    (its reader is replaced by synthetic frames: only the resize code runs)."""
    import importlib.metadata

    qvu = pytest.importorskip("qwen_vl_utils.vision_process")
    torch = pytest.importorskip("torch")
    version = tuple(int(x) for x in importlib.metadata.version("qwen-vl-utils").split(".")[:3])
    if version <= (0, 0, 8):
        pytest.skip("installed qwen-vl-utils predates the 'min' rule")
    shape: dict = {}

    def fake_reader(ele: dict):
        return torch.zeros((shape["n"], 3, shape["h"], shape["w"]), dtype=torch.uint8), 2.0

    monkeypatch.setitem(qvu.VIDEO_READER_BACKENDS, "torchvision", fake_reader)
    monkeypatch.setattr(qvu, "get_video_reader_backend", lambda: "torchvision")
    rng = random.Random(5)
    cases = 0
    for _ in range(60):
        n = rng.choice([2, 4, 8])
        h, w = rng.choice([(96, 128), (240, 320), (360, 640), (480, 270)])
        min_pixels = rng.choice([4 * 28 * 28, 16 * 28 * 28])
        total = rng.choice([24 * 28 * 28, 64 * 28 * 28, 24576 * 28 * 28])
        explicit = rng.choice([None, 20 * 28 * 28, 48 * 28 * 28, 360 * 420])
        shape.update(n=n, h=h, w=w)
        ele = {"video": "synthetic.mp4", "min_pixels": min_pixels, "total_pixels": total}
        if explicit is not None:
            ele["max_pixels"] = explicit
        out = qvu.fetch_video(ele)
        s = VideoSampling(
            nframes=n, min_pixels=min_pixels, total_pixels=total, max_pixels=explicit, max_pixels_rule="min"
        )
        assert tuple(out.shape[-2:]) == resize_frame_budget(h, w, s, n), (
            n,
            h,
            w,
            min_pixels,
            total,
            explicit,
        )
        cases += 1
    assert cases == 60
