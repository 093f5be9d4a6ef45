"""Train: logistic regression by gradient descent on a seeded sample."""
import argparse
import math
import random

from common import emit, read_rows, save_json

p = argparse.ArgumentParser()
p.add_argument("--date", required=True)
p.add_argument("--frac", type=float, default=1.0)
p.add_argument("--epochs", type=int, default=200)
p.add_argument("--features", required=True, help="the features step's CSV")
p.add_argument("--out", required=True, help="the model file to write")
a = p.parse_args()

rows = read_rows(a.features)
rng = random.Random(a.date)
rng.shuffle(rows)
split = int(len(rows) * 0.8)
train = rows[:split][: max(1, int(split * a.frac))]
cols = ["inv_sqrt_tenure", "monthly_100", "tickets"]
w = [0.0] * (len(cols) + 1)
for epoch in range(a.epochs):
    grad = [0.0] * len(w)
    for r in train:
        x = [1.0] + [float(r[c]) for c in cols]
        z = sum(wi * xi for wi, xi in zip(w, x))
        err = 1 / (1 + math.exp(-z)) - int(r["churned"])
        for i, xi in enumerate(x):
            grad[i] += err * xi
    w = [wi - 0.5 * g / len(train) for wi, g in zip(w, grad)]
save_json(a.out, {"columns": cols, "weights": w, "trained_on": len(train), "date": a.date})
print(f"trained on {len(train)} rows; weights {[round(x, 3) for x in w]}")
emit(trained_on=len(train))
