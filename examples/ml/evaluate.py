"""Evaluate: accuracy of the model on the held-out 20 %; fails below a bar."""
import argparse
import json
import math
import random

from common import emit, read_rows, save_json

p = argparse.ArgumentParser()
p.add_argument("--date", required=True)
p.add_argument("--model", required=True)
p.add_argument("--min-accuracy", type=float, default=0.0)
p.add_argument("--features", required=True, help="the features step's CSV")
p.add_argument("--out", required=True, help="the metrics file to write")
a = p.parse_args()

with open(a.model) as f:
    model = json.load(f)
rows = read_rows(a.features)
rng = random.Random(a.date)
rng.shuffle(rows)
test = rows[int(len(rows) * 0.8):]
correct = 0
for r in test:
    x = [1.0] + [float(r[c]) for c in model["columns"]]
    z = sum(wi * xi for wi, xi in zip(model["weights"], x))
    correct += int((1 / (1 + math.exp(-z)) >= 0.5) == (int(r["churned"]) == 1))
accuracy = correct / len(test)
save_json(a.out, {"accuracy": accuracy, "test_rows": len(test)})
print(f"accuracy {accuracy:.3f} on {len(test)} rows")
emit(accuracy=round(accuracy, 4))
if accuracy < a.min_accuracy:
    raise SystemExit(f"accuracy {accuracy:.3f} is below the required {a.min_accuracy}")
