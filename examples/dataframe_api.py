"""autoreg's Python API on a pandas DataFrame with categorical columns.

Run it from anywhere (it writes `.autoreg/` and `rent.autoreg` in the current folder):

    python examples/dataframe_api.py

The data are apartment rents, generated with a seed so that the example runs offline: two
categorical columns (`district`, a pandas Categorical, and `heating`, plain strings), numeric
columns with a few missing values, and two columns of pure noise that a good model drops.
"""

import numpy as np
import pandas as pd

import autoreg

# -- 1. The data: one DataFrame, the target is one of its columns ---------------------------
rng = np.random.default_rng(0)
n = 400
df = pd.DataFrame({
    "area_m2": rng.uniform(25, 140, n).round(1),
    "rooms": rng.integers(1, 6, n),
    "floor": rng.integers(0, 12, n),
    "district": pd.Categorical(rng.choice(["north", "centre", "south", "harbour"], n)),
    "heating": rng.choice(["gas", "electric", "heat pump"], n),
    "noise_a": rng.standard_normal(n),  # unrelated to the rent
    "noise_b": rng.standard_normal(n),  # unrelated to the rent
})
district_premium = {"north": 0.0, "centre": 400.0, "south": -100.0, "harbour": 250.0}
df["rent"] = (300 + 12 * df["area_m2"] + 40 * df["rooms"]
              + df["district"].map(district_premium).astype(float)
              + 60 * (df["heating"] == "gas") + rng.normal(0, 80, n))
df.loc[rng.choice(n, 20, replace=False), "area_m2"] = np.nan  # missing values are fine

# -- 2. The search ---------------------------------------------------------------------------
# Categorical columns are one-hot encoded, missing numbers imputed (both fitted on training
# rows only). A test split is held out first; the front is scored on it (`test_error`).
# log_mlflow=False keeps this example quick and self-contained: leave it out and the search
# is recorded in MLflow too (examples/read_from_mlflow.py shows how to read a record back).
result = autoreg.search(df, target="rent", n_trials=40, seed=0, log_mlflow=False)

columns = ["trial", "recipe", "error", "sparsity", "size_bytes", "n_features_used",
           "test_error"]
print(f"Pareto front: {len(result.front)} of {len(result.trials)} trials "
      "(error = RMSE on validation, in rent units)")
print(result.front[columns].to_string(index=False))

# -- 3. Pick one model and use it ------------------------------------------------------------
# "within": the smallest model whose validation error is within 2 % of the best one.
pick = result.pick("within", tolerance=0.02)
print(f"\npick: trial {pick['trial']} ({pick['recipe']}), error {pick['error']:.1f}, "
      f"{pick['n_features_used']} input columns used, {pick['size_bytes']} bytes")

model = result.model(pick)  # the very model that was measured: no refit
# Raw rows, shaped like the training data: an unseen district ("airport") counts as no
# district premium, a missing area is imputed, a missing heating is a category of its own.
new_rows = pd.DataFrame({
    "area_m2": [60.0, np.nan, 95.5],
    "rooms": [2, 3, 4],
    "floor": [3, 1, 7],
    "district": ["centre", "airport", "north"],
    "heating": ["gas", None, "heat pump"],
    "noise_a": [0.0, 0.0, 0.0],
    "noise_b": [0.0, 0.0, 0.0],
})
predicted = model.predict(new_rows)
print("predicted rents:", np.round(predicted, 2).tolist())

# -- 4. Ship it: the compact export, loaded back with numpy alone ----------------------------
size = model.save("rent.autoreg")
print(f"saved rent.autoreg ({size} bytes)")
loaded = autoreg.load("rent.autoreg")
assert np.allclose(loaded.predict(new_rows), predicted)  # same predictions after loading
print("rent.autoreg reloaded: same predictions")
