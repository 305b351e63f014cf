#!/usr/bin/env bash
# Several autoreg workers running one search together, through PostgreSQL.
#
#     pip install "autoreg[postgres]"
#     AUTOREG_STORAGE=journal+postgresql://USER:PASSWORD@HOST/DB bash examples/postgres_workers.sh
#
# Every worker runs the very same `autoreg search` command: the same --study in the same
# --storage makes them one study with one trial budget (--trials is the study's total, not
# each worker's). Here they are background processes on this machine; started on several
# machines instead, they would share the study just the same (see docs/cluster.md).
#
# AUTOREG_STORAGE  the database (default journal+postgresql://localhost/autoreg): autoreg's
#                  journal in one PostgreSQL table, cheap per trial; the form
#                  postgresql+psycopg://USER:PASSWORD@HOST/DB is Optuna's own tables, which
#                  optuna-dashboard can read, at more cost per trial
# STUDY            the study's name (default diabetes-workers); run again to resume it
# WORKERS          worker processes (default 3)
# TRIALS           the study's trial budget (default 60)
#
# Each worker writes its output to worker-N.log in the current folder. The workers skip MLflow
# (--no-mlflow); once they are done, `autoreg front --log` prints the front and writes the
# study's MLflow record once, to $MLFLOW_TRACKING_URI or MLflow's default (./mlflow.db).
# (Without --no-mlflow the workers log themselves, and exactly one of them writes the record.)
set -euo pipefail

STORAGE="${AUTOREG_STORAGE:-journal+postgresql://localhost/autoreg}"
STUDY="${STUDY:-diabetes-workers}"
WORKERS="${WORKERS:-3}"
TRIALS="${TRIALS:-60}"

pids=()
for i in $(seq 1 "$WORKERS"); do
    autoreg search diabetes --techniques l1,elasticnet,pruning --trials "$TRIALS" \
        --storage "$STORAGE" --study "$STUDY" --no-mlflow >"worker-$i.log" 2>&1 &
    pids+=("$!")
    echo "worker $i started (pid $!, output in worker-$i.log)"
done

# Wait for every worker: each one ends when the study's budget is spent and the others'
# last trials are done.
failed=0
for i in "${!pids[@]}"; do
    if wait "${pids[$i]}"; then
        echo "worker $((i + 1)) finished"
    else
        echo "worker $((i + 1)) failed (exit $?): see worker-$((i + 1)).log" >&2
        failed=1
    fi
done
if [ "$failed" -ne 0 ]; then
    exit 1
fi

# The study's front, read back from the database (any machine that reaches it can do this),
# and its MLflow record: one parent run, one child run (with its model) per front trial.
autoreg front "$STUDY" --storage "$STORAGE" --log
