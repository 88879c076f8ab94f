"""Extract the sprites of apple_picking from Melting Pot into the JAX twin's asset file.

The twin (`sed_meltingpot.twin.render`) must draw observations bit-equal to the
Lua substrate's on a machine that has only JAX, so it cannot import Melting Pot
at run time. This script reads the very prefabs the substrate hands to the Lua
engine (`sed_meltingpot.substrates.apple_picking.create_prefabs` and
`create_avatar_objects`: their `Appearance`/`AdditionalSprites` shapes and
palettes, and the `Zapper`'s beam colour) and writes them as RGBA arrays to
`sed_meltingpot/twin/assets/apple_picking_sprites.npz`.
`tests/test_twin_render.py` regenerates the arrays and checks they equal the
committed file, so the asset cannot drift from Melting Pot.

Usage: python scripts/make_twin_assets.py [--out PATH]
"""

from __future__ import annotations

import argparse
import os
import re
from typing import Any

import numpy as np
from sed_meltingpot.substrates import apple_picking_data

# Avatar colours are stored for this many player indices (the large map holds
# at most 122 players; `render` raises a clear error above this).
MAX_PLAYERS = 128
SPRITE = apple_picking_data.SPRITE_SIZE
DEFAULT_OUT = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    "sed_meltingpot", "twin", "assets", "apple_picking_sprites.npz")


def shape_to_rgba(text: str, palette: dict[str, tuple[int, ...]]) -> np.ndarray:
    """An ASCII shape as uint8[8, 8, 4]: each character is a palette colour.

    Only fully opaque or fully transparent colours are accepted: the renderer
    composes layers by plain replacement, which is exact only for those.
    """
    rows = [r for r in text.split("\n") if r]
    if len(rows) != SPRITE or any(len(r) != SPRITE for r in rows):
        raise ValueError(f"sprite is not {SPRITE}x{SPRITE}:\n{text}")
    out = np.zeros((SPRITE, SPRITE, 4), np.uint8)
    for y, row in enumerate(rows):
        for x, ch in enumerate(row):
            colour = tuple(palette[ch])
            if len(colour) == 3:
                colour = (*colour, 255)
            if colour[3] not in (0, 255):
                raise ValueError(f"partial alpha {colour} in sprite; the twin cannot draw it")
            out[y, x] = colour
    return out


def _appearance(obj: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Sprite name -> {'shape', 'palette', 'no_rotate'} of a prefab/game object."""
    sprites: dict[str, dict[str, Any]] = {}
    for comp in obj["components"]:
        kw = comp.get("kwargs", {})
        if comp["component"] == "Appearance":
            names, shapes_ = kw["spriteNames"], kw["spriteShapes"]
            pals, rots = kw["palettes"], kw["noRotates"]
        elif comp["component"] == "AdditionalSprites":
            names, shapes_ = kw["customSpriteNames"], kw["customSpriteShapes"]
            pals, rots = kw["customPalettes"], kw["customNoRotates"]
        else:
            continue
        for name, shape, pal, no_rot in zip(names, shapes_, pals, rots, strict=True):
            sprites[name] = {"shape": shape, "palette": pal, "no_rotate": bool(no_rot)}
    return sprites


def _state_sprite(obj: dict[str, Any], state: str) -> tuple[str, str]:
    """(layer, sprite) of `state` in a prefab's StateManager."""
    for comp in obj["components"]:
        if comp["component"] == "StateManager":
            for cfg in comp["kwargs"]["stateConfigs"]:
                if cfg["state"] == state:
                    return cfg.get("layer", ""), cfg.get("sprite", "")
    raise KeyError(state)


def _lua_colour(path: str, pattern: str) -> tuple[int, ...]:
    """A colour literal read from Melting Pot's Lua source (e.g. a default)."""
    from sed_meltingpot.core.optional import extra_import

    with extra_import("lua", "scripts/make_twin_assets.py"):
        import meltingpot

    with open(os.path.join(os.path.dirname(meltingpot.__file__), "lua", path)) as f:
        match = re.search(pattern, f.read())
    if match is None:
        raise ValueError(f"colour pattern {pattern!r} not found in {path}")
    return tuple(int(v) for v in match.group(1).split(","))


def _single(sprite: dict[str, Any]) -> np.ndarray:
    return shape_to_rgba(sprite["shape"], sprite["palette"])


def _four(sprite: dict[str, Any]) -> np.ndarray:
    """A sprite given for each of N, E, S, W (uint8[4, 8, 8, 4])."""
    shapes_ = sprite["shape"]
    if not (isinstance(shapes_, (list, tuple)) and len(shapes_) == 4 and sprite["no_rotate"]):
        raise ValueError("avatar sprites are expected as 4 per-orientation shapes with noRotate")
    return np.stack([shape_to_rgba(s, sprite["palette"]) for s in shapes_])


def build_assets(max_players: int = MAX_PLAYERS) -> dict[str, np.ndarray]:
    """The sprites of every tile content, read from the substrate's own prefabs."""
    from sed_meltingpot.substrates import apple_picking as ap

    config = ap.get_config()
    prefabs = ap.create_prefabs(config)
    expect = {  # prefab, state -> the layer the renderer assumes
        ("floor", "floor"): "background",
        ("grass", "grass"): "background",
        ("wall", "wall"): "upperPhysical",
        ("apple", "apple"): "lowerPhysical",
        ("apple", "appleWait"): "logic",
    }
    out: dict[str, np.ndarray] = {}
    for (prefab, state), layer in expect.items():
        got_layer, sprite_name = _state_sprite(prefabs[prefab], state)
        if got_layer != layer:
            raise ValueError(f"{prefab}.{state} is on layer {got_layer}, expected {layer}")
        sprite = _appearance(prefabs[prefab])[sprite_name]
        rgba = _single(sprite)
        key = {"floor": "floor", "grass": "grass", "wall": "wall"}.get(prefab)
        if state == "appleWait":
            if rgba[..., 3].any():
                raise ValueError("the eaten apple's sprite is expected fully transparent")
            continue
        key = key or "apple"
        out[key] = rgba
        out[f"{key}_no_rotate"] = np.array(sprite["no_rotate"])
    # Spawn points carry no sprite (nothing to draw).
    for prefab in ("spawn_point", "inside_spawn_point"):
        if _appearance(prefabs[prefab]):
            raise ValueError(f"{prefab} unexpectedly has a sprite")

    avatars = ap.create_avatar_objects(max_players, debug_observations=False)
    colours, self_sprite, beam = [], None, None
    for idx, avatar in enumerate(avatars):
        comps = {c["component"]: c.get("kwargs", {}) for c in avatar["components"]}
        live = comps["Avatar"]["aliveState"]
        layer, name = _state_sprite(avatar, live)
        if layer != "upperPhysical":
            raise ValueError(f"avatar {idx} is on layer {layer}")
        sprites = _appearance(avatar)
        colours.append(_four(sprites[name]))
        target = comps["Avatar"]["spriteMap"][name]
        this_self = _four(sprites[target])
        if self_sprite is None:
            self_sprite = this_self
        elif not np.array_equal(self_sprite, this_self):
            raise ValueError("players see themselves with different sprites")
        zap = comps["Zapper"]
        colour = zap.get("beamColor") or _lua_colour(
            "modules/avatar_library.lua", r"\{'beamColor', args\.default\(\{([^}]*)\}\)")
        this_beam = np.array((list(colour) + [255])[:4], np.uint8)
        if beam is None:
            beam = this_beam
        elif not np.array_equal(beam, this_beam):
            raise ValueError("players have different beam colours")
    out["avatar"] = np.stack(colours)  # [max_players, 4 orientations, 8, 8, RGBA]
    out["self"] = self_sprite
    out["beam"] = beam  # RGBA of the whole beam tile
    # Melting Pot's base_simulation: the colour drawn outside the map.
    out["out_of_bounds"] = np.array(
        list(_lua_colour("modules/base_simulation.lua",
                         r"addColor\('OutOfBounds', \{([^}]*)\}\)")) + [255], np.uint8)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=DEFAULT_OUT, help="output .npz path")
    args = parser.parse_args()
    from sed_meltingpot.cli import check_writable

    try:  # before Melting Pot's prefabs are read
        check_writable("out", args.out, is_file=True)
    except ValueError as e:
        parser.error(str(e))
    assets = build_assets()
    np.savez_compressed(args.out, **assets)
    print(f"wrote {args.out}: " + ", ".join(f"{k}{list(v.shape)}" for k, v in assets.items()))


if __name__ == "__main__":
    main()
