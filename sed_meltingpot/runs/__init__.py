"""Engine-neutral training runs: the settings (train_config.py: TrainConfig, the
presets), the run folder's files (run_files.py) and records (run_record.py: read_run),
the progress log (runlog.py), the checks before a run starts (run_plan.py) and a
quiet start (quiet.py: TensorFlow's, CUDA's and Ray's start-up lines left out). Both
engines use them: `training/rllib/` and `training/jax/`; nothing here imports either."""
