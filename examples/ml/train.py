"""Train: logistic regression by gradient descent on a seeded sample."""
import argparse
import math
import os
import random

from common import data_dir, emit, read_rows, save_json

p = argparse.ArgumentParser()
p.add_argument("--date", required=True)
p.add_argument("--frac", type=float, default=1.0)
p.add_argument("--epochs", type=int, default=200)
a = p.parse_args()

rows = read_rows(f"{data_dir(a.date)}/features.csv")
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
model_dir = os.environ.get("MODEL_DIR", f"{data_dir(a.date)}/model")
os.makedirs(model_dir, exist_ok=True)
save_json(f"{model_dir}/model.json", {"columns": cols, "weights": w, "trained_on": len(train), "date": a.date})
print(f"trained on {len(train)} rows; weights {[round(x, 3) for x in w]}")
emit(model=f"{model_dir}/model.json", trained_on=len(train))
