"""Render one episode to MP4 (or GIF): the world beside a panel of the tax game.

Examples:
  python scripts/render_video.py --checkpoint=outputs/run --output=outputs/episode.mp4
  python scripts/render_video.py --players=random --principal=fixed:0.1,0.3,0.5 \
      --max_steps=200 --scale=2 --mosaic --output=outputs/random.gif

Runs headless (no display, no network; ffmpeg comes from imageio-ffmpeg). The
logic is in sed_meltingpot.analysis.rendering. It plays on the Lua substrate through the RLlib
env: it needs the 'lua' and 'rllib' extras (pip install 'sed-meltingpot[lua,rllib]';
scripts/setup_env.sh installs both).
"""

from __future__ import annotations

from absl import app, flags

from sed_meltingpot import cli, evaluation
from sed_meltingpot.analysis import rendering

cli.define_game_flags()
flags.DEFINE_string("principal", None,
                    "trained | none | random | fixed:r0,r1,r2 (default: trained if the "
                    "checkpoint has a learned principal, else none).")
flags.DEFINE_string("output", "outputs/episode.mp4", "Video file: .mp4 or .gif.")
flags.DEFINE_float("fps", 10.0, "Frames (game steps) per second of video.", lower_bound=0.1)
flags.DEFINE_integer("scale", 3, "Integer upscaling of WORLD.RGB (144x192 pixels).",
                     lower_bound=1, upper_bound=16)
flags.DEFINE_integer("max_steps", None, "Stop after this many game steps (default: the "
                     "whole episode).", lower_bound=1)
flags.DEFINE_bool("mosaic", False, "Add the players' own views below the world.")
flags.DEFINE_bool("lossless", False,
                  "Bit-exact MP4 (libx264rgb, CRF 0): larger, and not every player opens it.")

FLAGS = flags.FLAGS

flags.register_validator("output", lambda v: v.lower().endswith((".mp4", ".gif")),
                         message="--output must end in .mp4 or .gif")


cli.register_principal_validator("principal", agent_word="trained")
cli.require_finite_floats()  # --fps=nan: refused before the episode is played


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}")
    cli.quiet_start(FLAGS)
    try:
        cli.check_writable("output", FLAGS.output, is_file=True)
        run = evaluation.load_run(FLAGS.checkpoint) if FLAGS.checkpoint else None
    except evaluation.CheckpointError as e:
        raise app.UsageError(f"--checkpoint={FLAGS.checkpoint}: {e}") from e
    except ValueError as e:
        raise app.UsageError(str(e)) from e
    has_trained = run is not None and run.principal is not None
    spec = FLAGS.principal or ("trained" if has_trained else "none")
    if spec == "trained" and not has_trained:
        raise app.UsageError("--principal=trained needs --checkpoint of a run that learned a "
                             "principal")
    try:
        setup = evaluation.build_setup(run, cli.game_overrides(FLAGS), seed=FLAGS.seed)
    except ValueError as e:
        raise app.UsageError(str(e)) from e
    try:
        principal = evaluation.make_principal(spec, setup, run, greedy=FLAGS.greedy)
    except ValueError as e:
        raise app.UsageError(f"{e} (choose another --principal)") from e
    players = evaluation.make_players(cli.players_kind(FLAGS), run, greedy=FLAGS.greedy,
                                      setup=setup)
    if FLAGS.dry_run:
        print(f"dry run: settings valid; game: {setup.game}")
        return
    result = rendering.render_episode(
        setup, players, principal, FLAGS.output, fps=FLAGS.fps,
        scale=FLAGS.scale, max_steps=FLAGS.max_steps, mosaic=FLAGS.mosaic, seed=FLAGS.seed,
        lossless=FLAGS.lossless, principal_label=spec)
    height, width, _ = result.frame_shape
    print(f"wrote {result.path}: {result.num_frames} frames of {width}x{height} at "
          f"{FLAGS.fps:g} fps; objective W_eta so far {result.objective:.2f}, "
          f"apples {result.metrics['productivity']:g}")


if __name__ == "__main__":
    app.run(main)
