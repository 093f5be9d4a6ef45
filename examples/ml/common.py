"""Helpers shared by the example ML pipeline's steps (standard library only)."""
import csv
import json
import os
import sys


def emit(**outputs):
    """Report outputs to Kiln: KEY=VALUE lines in the file named by $KILN_OUTPUT."""
    path = os.environ.get("KILN_OUTPUT")
    if not path:
        return
    with open(path, "a") as f:
        for k, v in outputs.items():
            f.write(f"{k}={v}\n")


def read_rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def write_rows(path, rows, fields):
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)


def save_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=True)


def log(msg):
    print(msg, file=sys.stderr, flush=True)
