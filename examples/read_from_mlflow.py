"""Read a finished autoreg search back from MLflow, and use the model it picked.

First run a search that logs to MLflow, e.g. the job in this folder, then this script:

    autoreg search --config examples/job.toml
    python examples/read_from_mlflow.py                      # experiment "autoreg-examples"
    python examples/read_from_mlflow.py EXPERIMENT [STUDY]   # another experiment or study

The store is MLflow's own choice: $MLFLOW_TRACKING_URI if set, else MLflow's default
(./mlflow.db). Nothing here needs autoreg's Optuna storage: the MLflow record is enough.
"""

import os
import sys
import tempfile

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from sklearn.datasets import load_breast_cancer

import autoreg

experiment_name = sys.argv[1] if len(sys.argv) > 1 else "autoreg-examples"
study = sys.argv[2] if len(sys.argv) > 2 else None
client = MlflowClient()  # reads MLFLOW_TRACKING_URI, like every MLflow client
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # two small downloads
print(f"tracking URI: {mlflow.get_tracking_uri()}")

# -- 1. The parent run: one per search (per study), tagged autoreg.role = search -------------
experiment = client.get_experiment_by_name(experiment_name)
if experiment is None:
    sys.exit(f"no MLflow experiment named {experiment_name!r}: run a search first "
             "(autoreg search --config examples/job.toml)")
query = "tags.`autoreg.role` = 'search'"
if study:
    query += f" and tags.`autoreg.study` = '{study}'"
parents = client.search_runs([experiment.experiment_id], query,
                             order_by=["attributes.start_time DESC"], max_results=1)
if not parents:
    sys.exit(f"no autoreg search in experiment {experiment_name!r}")
parent = parents[0]  # the latest search
tags, params, metrics = parent.data.tags, parent.data.params, parent.data.metrics
print(f"search run {parent.info.run_id}: study {tags['autoreg.study']!r} on "
      f"{tags['autoreg.dataset']!r}, status {parent.info.status}")

# The search settings are the run's params ...
print(f"  settings: task={params['task']} techniques={params['techniques']} "
      f"metric={params['metric']} validation={params['validation']} seed={params['seed']}")
# ... and its summary is in metrics: front size, hypervolume, the pick's numbers.
print(f"  {metrics['n_trials']:.0f} trials, {metrics['n_failed']:.0f} failed, "
      f"front of {metrics['front_size']:.0f}, hypervolume {metrics['hypervolume']:.3f}")
print(f"  pick: trial {tags['pick_trial']}, error {metrics['pick_error']:.4g}, "
      f"sparsity {metrics['pick_sparsity']:.3f}, {metrics['pick_size_bytes']:.0f} bytes")

# -- 2. The front as a table: the artifact front.csv -----------------------------------------
with tempfile.TemporaryDirectory() as tmp:
    path = client.download_artifacts(parent.info.run_id, "front.csv", tmp)
    front = pd.read_csv(path)
print(f"\nfront.csv ({len(front)} rows):")
print(front[["trial", "recipe", "error", "sparsity", "size_bytes", "n_features_used",
             "test_error"]].to_string(index=False))

# -- 3. The picked model: the child run tagged pick = true -----------------------------------
# Every front trial has a child run with the same metric names, tags recipe / technique /
# pareto / pick, and its model: an MLflow pyfunc model whose URI is the tag autoreg.model_uri.
children = client.search_runs(
    [experiment.experiment_id],
    f"tags.`mlflow.parentRunId` = '{parent.info.run_id}' and tags.pick = 'true'")
child = children[0]
print(f"\npicked child run {child.info.run_id}: trial {child.data.tags['autoreg.trial']}, "
      f"recipe {child.data.tags['recipe']}, parameters {child.data.params}")

model = mlflow.pyfunc.load_model(child.data.tags["autoreg.model_uri"])

# Some rows to predict: here 8 rows of scikit-learn's copy of the data the job used (autoreg's
# built-in datasets are scikit-learn's). Any DataFrame with these columns will do.
if tags["autoreg.dataset"] != "breast_cancer":
    sys.exit("this example predicts rows of breast_cancer; give your own rows for "
             f"{tags['autoreg.dataset']!r}")
rows = load_breast_cancer(as_frame=True).data.sample(8, random_state=0)
labels = model.predict(rows)
proba = model.predict(rows, params={"output": "proba"})  # one column per class
print(f"predicted classes: {labels.tolist()}")
print(f"P(class 1): {[round(float(p), 4) for p in proba[:, 1]]}")

# The child run also holds the compact export, model.autoreg: numpy alone loads it.
with tempfile.TemporaryDirectory() as tmp:
    path = client.download_artifacts(child.info.run_id, "model.autoreg", tmp)
    compact = autoreg.load(path)
    agree = np.allclose(compact.predict_proba(rows), proba)
print(f"model.autoreg gives the same probabilities: {agree}")
