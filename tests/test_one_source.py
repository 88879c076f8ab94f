"""Each substrate fact and game default has one home (issue 11, section 7).

Substrate facts (actions, view, sprite size, observation names, avatar
colours) live in `substrates/apple_picking_data.py` (Melting Pot-free) and
`substrates/apple_picking.py` (colours); game defaults in
`sed_meltingpot/game/config.py`, the tax schedule's in `sed_meltingpot/core/tax.py` (which
config imports: tax sits below config, issue 17). The tests check (a) those homes against Melting
Pot's own Commons Harvest config, the independent reference, (b) that the
modules using them hold the very same objects, and (c) by reading the source,
that no module declares its own literal copy again. The registries of voting
rules and welfare functions must reject bad names the same way.
"""

from __future__ import annotations

import ast
import pathlib

import pytest
from sed_meltingpot.substrates import apple_picking_data as data

from sed_meltingpot.core import registry, tax, voting, welfare
from sed_meltingpot.game import config

ROOT = pathlib.Path(__file__).resolve().parents[1]
HOMES = {ROOT / "substrates" / "apple_picking_data.py",
         ROOT / "sed_meltingpot" / "game" / "config.py",
         ROOT / "sed_meltingpot" / "core" / "tax.py"}
# Names that, outside their home, must be bound to the home's value, not a literal.
FACT_NAMES = {
    "SPRITE", "SPRITE_SIZE", "NUM_ACTIONS", "VIEW_TILES", "VIEW_SHAPE", "NUM_PLAYERS",
    "DEFAULT_THRESHOLDS", "DEFAULT_NUM_RATE_LEVELS", "PLAYER_SUBSTRATE_KEYS",
    "INDIVIDUAL_OBSERVATIONS", "GLOBAL_OBSERVATIONS",
}

LITERAL_COPIES = {data.VIEW_SHAPE, data.VIEW_SELF_TILE, config.DEFAULT_THRESHOLDS}


def _source_files() -> list[pathlib.Path]:
    files = [*ROOT.glob("sed_meltingpot/**/*.py"), *ROOT.glob("scripts/*.py"),
             *ROOT.glob("substrates/*.py")]
    return sorted(f for f in files if f not in HOMES)


def _is_literal(node: ast.AST) -> bool:
    try:
        ast.literal_eval(node)
    except ValueError:
        return False
    return True


def test_no_module_redeclares_a_fact_as_a_literal():
    copies = []
    for path in _source_files():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                names = {t.id for t in targets if isinstance(t, ast.Name)}
                if names & FACT_NAMES and node.value is not None and _is_literal(node.value):
                    copies.append(f"{path.relative_to(ROOT)}:{node.lineno} {sorted(names)}")
            # The view (11, 11), the avatar's tile in it (9, 5), the thresholds typed in again.
            if (isinstance(node, ast.Tuple) and _is_literal(node)
                    and any(ast.literal_eval(node) == c for c in LITERAL_COPIES)):
                copies.append(f"{path.relative_to(ROOT)}:{node.lineno} {ast.literal_eval(node)}")
            # gymnasium.spaces.Discrete(8): the action count typed in again.
            if (isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "Discrete"
                    and node.args and isinstance(node.args[0], ast.Constant)):
                copies.append(f"{path.relative_to(ROOT)}:{node.lineno} Discrete(literal)")
    assert not copies, "literal copies of a one-source fact:\n" + "\n".join(copies)


def test_homes_equal_melting_pot_commons_harvest():
    """The independent reference: Melting Pot's own Commons Harvest config."""
    pytest.importorskip("meltingpot")
    from meltingpot.configs.substrates import commons_harvest__open as ch

    assert len(ch.ACTION_SET) == data.NUM_ACTIONS == 8
    avatar = ch.create_avatar_object(0, ch.TARGET_SPRITE_SELF, spawn_group="spawnPoints")
    view = next(c["kwargs"]["view"] for c in avatar["components"] if c["component"] == "Avatar")
    assert data.VIEW_SHAPE == (view["forward"] + view["backward"] + 1,
                               view["left"] + view["right"] + 1) == (11, 11)
    assert data.VIEW_SELF_TILE == (view["forward"], view["left"])
    rgb = ch.get_config().timestep_spec.observation["RGB"].shape
    assert rgb == (data.VIEW_SHAPE[0] * data.SPRITE_SIZE, data.VIEW_SHAPE[1] * data.SPRITE_SIZE, 3)
    assert set(ch.get_config().individual_observation_names) <= set(data.PLAYER_OBSERVATIONS)


def test_lua_substrate_declares_the_homes_observations():
    pytest.importorskip("meltingpot")
    from sed_meltingpot.substrates import apple_picking as ap

    cfg = ap.finalize_config(ap.get_config())
    assert tuple(cfg.individual_observation_names) == data.PLAYER_OBSERVATIONS
    assert tuple(cfg.global_observation_names) == data.GLOBAL_OBSERVATIONS
    assert len(ap.ACTION_SET) == data.NUM_ACTIONS
    assert cfg.timestep_spec.observation["RGB"].shape == (
        data.VIEW_SHAPE[0] * data.SPRITE_SIZE, data.VIEW_SHAPE[1] * data.SPRITE_SIZE, 3)


def test_users_hold_the_homes_values():
    pytest.importorskip("meltingpot")
    from sed_meltingpot import evaluation
    from sed_meltingpot.envs import pettingzoo_env
    from sed_meltingpot.game import sed_game as game

    assert game.PLAYER_SUBSTRATE_KEYS is data.PLAYER_OBSERVATIONS
    assert evaluation.NUM_ACTIONS == data.NUM_ACTIONS
    greedy = evaluation.GreedyApplePlayers((0.0, 0.0, 0.0), pixels_per_tile=1)
    assert greedy.view_tiles is data.VIEW_SHAPE and greedy.own_tile is data.VIEW_SELF_TILE
    # The scripted player's moves are Melting Pot's (tests/test_twin_env.py checks
    # ACTION_NAMES against commons_harvest__open.ACTION_SET).
    moves = (greedy.FORWARD, greedy.BACKWARD, greedy.LEFT, greedy.RIGHT, greedy.TURN_LEFT,
             greedy.TURN_RIGHT)
    assert [data.ACTION_NAMES[m] for m in moves] == [
        "FORWARD", "BACKWARD", "STEP_LEFT", "STEP_RIGHT", "TURN_LEFT", "TURN_RIGHT"]
    space = pettingzoo_env.player_observation_space(config.GameConfig())
    assert space["RGB"].shape == (88, 88, 3)  # Commons Harvest's RGB, checked above
    assert tax.DEFAULT_THRESHOLDS is config.DEFAULT_THRESHOLDS
    assert len(tax.DEFAULT_RATE_LEVELS) == config.DEFAULT_NUM_RATE_LEVELS
    assert tax.DEFAULT_RATE_LEVELS == config.GameConfig().rate_levels


def test_twin_holds_the_homes_values():
    pytest.importorskip("jax")
    from sed_meltingpot.training.jax import ppo
    from sed_meltingpot.twin import render

    assert ppo.NUM_ACTIONS == data.NUM_ACTIONS
    assert render.SPRITE == data.SPRITE_SIZE
    assert (render.VIEW_H, render.VIEW_W) == data.VIEW_SHAPE


def test_avatar_colours_match_the_substrates_avatars():
    """The video panel's colour of player i is the one its avatar is drawn with."""
    pytest.importorskip("meltingpot")
    pytest.importorskip("PIL")
    from sed_meltingpot.substrates import apple_picking as ap

    from sed_meltingpot.analysis import rendering

    for i in (0, 6, 15, 16, 70):
        avatar = ap._create_avatar_object(i, "spawnPoints")
        look = next(c["kwargs"] for c in avatar["components"] if c["component"] == "Appearance")
        assert rendering.player_colour(i) == tuple(look["palettes"][0]["*"][:3]), i


# ------------------------------------------------------------------ registries
REGISTRIES = [
    (voting.register_voting_rule, voting.get_voting_rule, voting.VOTING_RULES, "voting rule"),
    (welfare.register_welfare, welfare.get_welfare, welfare.WELFARE_FUNCTIONS,
     "welfare function"),
]


@pytest.fixture
def restore_registries():
    saved = [dict(r[2]) for r in REGISTRIES]
    yield
    for (_, _, table, _), copy in zip(REGISTRIES, saved, strict=True):
        table.clear()
        table.update(copy)


def _message(call, kind: str) -> tuple[type, str]:
    with pytest.raises(Exception) as info:
        call()
    return info.type, str(info.value).replace(kind, "<kind>")


def test_registries_refuse_bad_entries_identically(restore_registries):
    """Duplicate, empty, non-callable and unknown names: same error, same words."""
    seen = []
    for register, get, table, kind in REGISTRIES:
        taken = sorted(table)[0]
        errors = [
            _message(lambda r=register, t=taken: r(t, lambda *a: 0.0), kind),
            _message(lambda r=register: r("", lambda *a: 0.0), kind),
            _message(lambda r=register: r("not_callable", 3), kind),
        ]
        errors = [(t, m.replace(repr(taken), "<name>")) for t, m in errors]
        unknown = _message(lambda g=get: g("no_such_name"), kind)
        seen.append((errors, unknown))
    (v_errors, v_unknown), (w_errors, w_unknown) = seen
    assert v_errors == w_errors
    assert [t for t, _ in v_errors] == [ValueError, ValueError, TypeError]
    assert "already registered; pass overwrite=True" in v_errors[0][1]
    # Unknown names list the registered ones; voting adds its fixed:<eta> form.
    assert v_unknown[0] is w_unknown[0] is ValueError
    assert w_unknown[1].startswith("unknown <kind> 'no_such_name'; known: ")
    assert v_unknown[1].startswith("unknown <kind> 'no_such_name'; known: ")
    assert "egalitarian" in w_unknown[1] and "median" in v_unknown[1]


def test_registry_helper_adds_and_overwrites():
    table: dict = {}
    registry.register(table, "thing", "a", len)
    assert registry.lookup(table, "thing", "a") is len
    with pytest.raises(ValueError, match="thing 'a' is already registered"):
        registry.register(table, "thing", "a", max)
    registry.register(table, "thing", "a", max, overwrite=True)
    assert table == {"a": max}
    with pytest.raises(ValueError, match=r"unknown thing \['x'\]; known: a"):
        registry.lookup(table, "thing", ["x"])  # unhashable names are unknown, not TypeError


# ------------------------------------------------------------------ tax-cap curriculum
def test_both_engines_read_one_tax_cap_curriculum():
    """The cap ramps linearly from tax_cap_start to 1 over the first
    tax_cap_fraction of the steps (paper Appendix A); both engines get their
    settings from `TrainConfig.tax_cap_curriculum` and agree with the hand values."""
    from sed_meltingpot.runs.train_config import TrainConfig

    train = TrainConfig(tax_cap_start=0.2, tax_cap_fraction=0.5)
    curriculum = train.tax_cap_curriculum(learned=True, total_env_steps=1000)
    ramp = 0.5 * 1000
    hand = {0: 0.2, ramp / 2: 0.2 + 0.8 / 2, ramp: 1.0, 1000: 1.0}
    assert not train.tax_cap_curriculum(learned=False)["enabled"]
    assert train.tax_cap_curriculum(learned=True)["total"] == train.total_env_steps
    engines = []
    try:
        from sed_meltingpot.training.jax import ppo
    except ImportError:  # JAX absent
        pass
    else:
        engines.append(lambda s: float(ppo.tax_cap_at(s, **curriculum)))
    try:
        from sed_meltingpot.training.rllib import callbacks
    except ImportError:  # Ray absent
        pass
    else:
        engines.append(lambda s: callbacks.tax_cap(s, curriculum))
        # A curriculum missing keys falls back to TrainConfig's defaults.
        assert callbacks.tax_cap(0, {"total": 10}) == pytest.approx(TrainConfig().tax_cap_start)
    assert engines, "neither engine is installed"
    for engine in engines:
        for steps, cap in hand.items():
            assert engine(steps) == pytest.approx(cap, abs=1e-6), steps
