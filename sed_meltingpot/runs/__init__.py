"""Engine-neutral training runs: the settings (train_config.py: TrainConfig, the
presets), the run folder's files (run_files.py) and records (run_record.py: read_run),
the progress log (runlog.py) and the checks before a run starts (run_plan.py). Both
engines use them: `training/` (RLlib) and `twin/` (JAX); nothing here imports either."""
