"""Render an episode to video: the world beside a panel of the tax game.

Each frame shows the substrate's `WORLD.RGB` after a game step, upscaled by
an integer factor (nearest neighbour, so tiles stay sharp and the region is
an exact copy of the substrate's pixels), beside a panel drawn with Pillow:
the step and tax period, the current effective rates per bracket, the voted
eta and the objective so far, and per player its colour, sigma and apples
this period and this round. `mosaic=True` adds the players' own views below.

Everything shown is read from the game's per-step info and observations
(nothing is recomputed). Frames are encoded while the episode runs, so memory
stays flat: MP4 through the ffmpeg binary that the `imageio-ffmpeg` wheel
ships (no display, no network), or GIF through Pillow.
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from sed_meltingpot.core.optional import extra_import
from sed_meltingpot.evaluation import EvalSetup, PlayerPolicy, make_env
from sed_meltingpot.game.principals import Principal, no_tax

BACKGROUND = (24, 24, 28)
TEXT = (235, 235, 235)
DIM = (150, 150, 160)
BAR = (230, 170, 60)
MACRO_BLOCK = 16  # H.264 encoders want frame sizes in multiples of 16: pad, never resize


def player_colour(index: int) -> tuple[int, int, int]:
    """The avatar colour Melting Pot's Commons Harvest gives player `index`
    (`substrates/apple_picking.avatar_colour`, the one the substrate draws with)."""
    from sed_meltingpot.substrates.apple_picking import avatar_colour

    rgb = avatar_colour(index)
    return tuple(int(c) for c in rgb[:3])


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """DejaVu Sans from matplotlib's data (always installed with it), else
    Pillow's built-in font."""
    try:
        import matplotlib

        path = os.path.join(matplotlib.get_data_path(), "fonts", "ttf", "DejaVuSans.ttf")
        return ImageFont.truetype(path, size)
    except (ImportError, OSError):
        return ImageFont.load_default(size)


@dataclasses.dataclass(frozen=True)
class PanelInfo:
    """What the panel shows at one step (all read from the game)."""

    step: int
    episode_length: int
    period: int  # index of the tax period within the round
    period_step: int  # steps played in the current period, 1..tax_period
    tax_period: int
    thresholds: tuple[float, ...]
    rates: np.ndarray  # effective rates per bracket
    eta: float
    objective: float  # W_eta of the round so far
    sigma: np.ndarray  # selfishness per player
    period_apples: np.ndarray  # apples per player in the current period
    round_apples: np.ndarray  # apples per player in the round so far
    principal: str = ""


def panel_info(game: Any, result: Any, principal: str = "") -> PanelInfo:
    """The panel's numbers after `game.step` returned `result` (at a period's
    or round's last step the game's counters are already reset, so the
    settled record is shown instead)."""
    info = result.info
    obs = game.principal_observation()
    period_apples = (info.period_record.incomes if info.period_end
                     else obs["PERIOD_APPLES"])
    round_apples = info.round_record.apples if info.round_end else obs["ROUND_APPLES"]
    cfg = game.config
    period_step = (info.step - 1) % cfg.tax_period + 1
    return PanelInfo(
        step=int(info.step), episode_length=cfg.episode_length, period=int(info.period),
        period_step=int(period_step), tax_period=cfg.tax_period,
        thresholds=tuple(float(t) for t in game.thresholds), rates=np.asarray(info.rates),
        eta=float(info.eta), objective=float(info.objective),
        sigma=np.asarray(game.selfishness), period_apples=np.asarray(period_apples),
        round_apples=np.asarray(round_apples), principal=principal)


def _bracket_label(lo: float, hi: float, last: bool) -> str:
    return f">{lo:g}" if last else f"{lo:g}-{hi:g}"


def draw_panel(info: PanelInfo, width: int, height: int, scale: int = 3) -> np.ndarray:
    """The info panel as an (height, width, 3) uint8 image."""
    image = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(image)
    size = max(10, 4 * scale + 2)
    font, small = _font(size), _font(max(9, size - 3))
    line = int(size * 1.35)
    x0, y = size // 2, size // 2
    if info.principal:
        draw.text((x0, y), f"principal: {info.principal}", font=small, fill=DIM)
        y += line
    draw.text((x0, y), f"step {info.step}/{info.episode_length}", font=font, fill=TEXT)
    y += line
    draw.text((x0, y), f"tax period {info.period + 1}, step {info.period_step}/"
              f"{info.tax_period}", font=small, fill=DIM)
    y += line
    draw.text((x0, y), f"voted eta {info.eta:.3f}", font=font, fill=TEXT)
    y += line
    draw.text((x0, y), f"objective W_eta {info.objective:.2f}", font=font, fill=TEXT)
    y += int(line * 1.3)
    draw.text((x0, y), "tax rate per bracket (apples/period)", font=small, fill=DIM)
    y += line
    bar_x = x0 + int(size * 4.2)
    bar_w = max(20, width - bar_x - int(size * 3.6))
    num_brackets = len(info.rates)
    for b, rate in enumerate(info.rates):
        label = _bracket_label(info.thresholds[b], info.thresholds[b + 1], b == num_brackets - 1)
        draw.text((x0, y), label, font=small, fill=TEXT)
        draw.rectangle([bar_x, y + 2, bar_x + bar_w, y + size - 2], outline=DIM)
        if rate > 0:
            draw.rectangle([bar_x, y + 2, bar_x + int(round(bar_w * float(rate))), y + size - 2],
                           fill=BAR)
        draw.text((bar_x + bar_w + size // 3, y), f"{float(rate):.2f}", font=small, fill=TEXT)
        y += line
    y += line // 3
    draw.text((x0, y), "player, σ (selfishness), apples", font=small, fill=DIM)
    y += line
    columns = [x0 + int(size * k) for k in (2.2, 5.4, 9.2)]
    draw.text((x0, y), "#", font=small, fill=DIM)
    for x, title in zip(columns, ("σ", "period", "round"), strict=True):
        draw.text((x, y), title, font=small, fill=DIM)
    y += line
    for i, sigma in enumerate(info.sigma):
        if y + line > height:
            draw.text((x0, y), f"... {len(info.sigma) - i} more", font=small, fill=DIM)
            break
        draw.rectangle([x0, y + 2, x0 + size - 4, y + size - 2], fill=player_colour(i))
        draw.text((x0 + size, y), f"{i}", font=small, fill=TEXT)
        values = (f"{float(sigma):.2f}", f"{info.period_apples[i]:g}",
                  f"{info.round_apples[i]:g}")
        for x, text in zip(columns, values, strict=True):
            draw.text((x, y), text, font=small, fill=TEXT)
        y += line
    return np.asarray(image, dtype=np.uint8)


def upscale(image: np.ndarray, scale: int) -> np.ndarray:
    """Nearest-neighbour upscaling by an integer factor."""
    return np.repeat(np.repeat(image, scale, axis=0), scale, axis=1)


@dataclasses.dataclass(frozen=True)
class Layout:
    """Where each part sits in a frame (rows, columns in pixels)."""

    height: int
    width: int
    world: tuple[int, int, int, int]  # top, left, height, width
    panel: tuple[int, int, int, int]
    views: list[tuple[int, int, int, int]]  # one box per player if mosaic


def frame_layout(world_shape: Sequence[int], scale: int, panel_width: int,
                 view_shape: Sequence[int] | None = None, num_players: int = 0,
                 view_scale: int = 1) -> Layout:
    """World top-left, panel to its right, optional views in rows below;
    the canvas is padded to multiples of 16 so no encoder resizes it."""
    wh, ww = int(world_shape[0]) * scale, int(world_shape[1]) * scale
    panel = (0, ww, wh, panel_width)
    width = ww + panel_width
    views: list[tuple[int, int, int, int]] = []
    height = wh
    if view_shape is not None and num_players:
        vh, vw = int(view_shape[0]) * view_scale, int(view_shape[1]) * view_scale
        gap = 4
        per_row = max(1, (width + gap) // (vw + gap))
        for i in range(num_players):
            r, c = divmod(i, per_row)
            views.append((wh + gap + r * (vh + gap), c * (vw + gap), vh, vw))
        height = views[-1][0] + vh
    pad = lambda v: -(-v // MACRO_BLOCK) * MACRO_BLOCK  # noqa: E731
    return Layout(pad(height), pad(width), (0, 0, wh, ww), panel, views)


def compose_frame(world: np.ndarray, info: PanelInfo, layout: Layout, scale: int,
                  views: Sequence[np.ndarray] | None = None, view_scale: int = 1) -> np.ndarray:
    """One video frame: upscaled world, panel and (optionally) views."""
    frame = np.empty((layout.height, layout.width, 3), dtype=np.uint8)
    frame[:] = BACKGROUND
    top, left, h, w = layout.world
    frame[top:top + h, left:left + w] = upscale(world, scale)
    top, left, h, w = layout.panel
    frame[top:top + h, left:left + w] = draw_panel(info, w, h, scale)
    if views is not None:
        for i, ((top, left, h, w), view) in enumerate(zip(layout.views, views, strict=True)):
            frame[top:top + h, left:left + w] = upscale(view, view_scale)
            frame[top:top + 2, left:left + w] = player_colour(i)  # which player's view
    return frame


class VideoWriter:
    """Streams frames to .mp4 (H.264 via imageio-ffmpeg) or .gif (Pillow).

    `lossless=True` writes MP4 with libx264rgb at CRF 0, bit-exact RGB (for
    checks; fewer players open it); the default is yuv420p H.264, which
    every player opens but which changes pixels slightly.
    """

    def __init__(self, path: str, fps: float, lossless: bool = False) -> None:
        ext = os.path.splitext(path)[1].lower()
        if ext not in (".mp4", ".gif"):
            raise ValueError(f"output {path!r} must end in .mp4 or .gif")
        if not (math.isfinite(float(fps)) and fps > 0):
            # Checked before the file is opened: a NaN frame duration fails at the first
            # frame and left a broken GIF behind.
            raise ValueError(f"fps={fps!r} must be a finite number > 0")
        folder = os.path.dirname(os.path.abspath(path))
        os.makedirs(folder, exist_ok=True)
        self.path, self.fps, self.count = path, float(fps), 0
        if ext == ".gif":
            with extra_import("lua", "writing videos"):
                import imageio.v3 as iio

            self._gif = iio.imopen(path, "w", plugin="pillow")
            self._mp4 = None
        else:
            with extra_import("lua", "writing videos"):
                import imageio.v2 as iio2

            self._gif = None
            options: dict[str, Any] = {"fps": self.fps, "macro_block_size": 1,
                                       "ffmpeg_log_level": "error"}
            if lossless:
                options |= {"codec": "libx264rgb", "pixelformat": "rgb24",
                            "output_params": ["-crf", "0", "-preset", "veryfast"]}
            else:
                options |= {"codec": "libx264", "pixelformat": "yuv420p", "quality": 8}
            self._mp4 = iio2.get_writer(path, **options)

    def append(self, frame: np.ndarray) -> None:
        if self._mp4 is not None:
            self._mp4.append_data(frame)
        else:
            self._gif.write(frame, duration=1000.0 / self.fps, loop=0)
        self.count += 1

    def close(self) -> None:
        if self._mp4 is not None:
            self._mp4.close()
        else:
            self._gif.close()


def print_progress(done: int, total: int | None) -> None:
    """A progress counter on stderr, redrawn in place every 2% (every 50
    frames without a known total)."""
    if total:
        step = max(1, total // 50)
        if done % step and done != total:
            return
        sys.stderr.write(f"\rencoding frame {done}/{total} ({100 * done // total}%)")
    elif done % 50 == 0:
        sys.stderr.write(f"\rencoding frame {done}")
    sys.stderr.flush()


@dataclasses.dataclass
class RenderResult:
    path: str | None
    num_frames: int
    frame_shape: tuple[int, int, int]
    layout: Layout
    metrics: dict[str, Any]  # the game's episode_metrics() at the end
    objective: float  # W_eta of the current round at the last frame (rounds may be unfinished)


FrameHook = Callable[[np.ndarray, Any, Any], None]  # (frame, SEDGame, StepResult)


def render_episode(setup: EvalSetup, players: PlayerPolicy,
                   principal: Principal | None = None, output: str | None = None, *,
                   fps: float = 10.0, scale: int = 3, max_steps: int | None = None,
                   mosaic: bool = False, seed: int = 0, lossless: bool = False,
                   principal_label: str | None = None, on_frame: FrameHook | None = None,
                   progress: Callable[[int, int | None], None] | None = print_progress
                   ) -> RenderResult:
    """Plays one episode and encodes one frame per game step (the world after
    that step). `output` None renders without writing (frames via `on_frame`).
    `principal`: any `principals.Principal` (None: no tax); the panel names it
    `principal_label`, else its command-line spelling (`str(principal)`)."""
    from sed_meltingpot.evaluation import run_episode

    if scale < 1:
        raise ValueError(f"scale={scale} must be >= 1")
    if principal is None:
        principal = no_tax(setup.game.num_brackets)
    label = principal_label or str(principal)
    writer = VideoWriter(output, fps, lossless) if output else None
    state: dict[str, Any] = {"layout": None, "frames": 0, "objective": float("nan")}
    total = setup.game.episode_length if max_steps is None else min(
        max_steps, setup.game.episode_length)
    view_scale = max(1, scale // 2)

    def on_step(game: Any, result: Any) -> None:
        world = game.principal_observation()["WORLD.RGB"]
        views = [o["RGB"] for o in game.player_observations()] if mosaic else None
        if state["layout"] is None:
            panel_width = max(220, 90 * scale)
            state["layout"] = frame_layout(
                world.shape, scale, panel_width, views[0].shape if views else None,
                game.num_players, view_scale)
        frame = compose_frame(world, panel_info(game, result, label), state["layout"], scale,
                              views, view_scale)
        if writer is not None:
            writer.append(frame)
        state["frames"] += 1
        state["objective"] = float(result.info.objective)
        if on_frame is not None:
            on_frame(frame, game, result)
        if progress is not None:
            progress(state["frames"], total)

    env = make_env(setup, principal, seed, on_step)
    try:
        metrics = run_episode(env, players, seed=seed, max_steps=max_steps)
    finally:
        env.close()
        if writer is not None:
            writer.close()
        if progress is print_progress:
            sys.stderr.write("\n")
    layout = state["layout"]
    shape = (layout.height, layout.width, 3) if layout else (0, 0, 3)
    return RenderResult(output, state["frames"], shape, layout, metrics, state["objective"])
