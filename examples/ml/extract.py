"""Extract: write the day's raw rows (synthetic churn data, seeded by the date)."""
import argparse
import random

from common import emit, write_rows

p = argparse.ArgumentParser()
p.add_argument("--date", required=True)
p.add_argument("--region", default="eu")
p.add_argument("--rows", type=int, default=2000)
p.add_argument("--out", required=True, help="the CSV file to write")
a = p.parse_args()

rng = random.Random(f"{a.date}/{a.region}")
rows = []
for i in range(a.rows):
    tenure = rng.randint(1, 72)
    monthly = round(rng.uniform(10, 120), 2)
    tickets = rng.randint(0, 6)
    # Churn is likelier with short tenure, high bills and many tickets.
    score = -2.0 + 3.0 / tenure ** 0.5 + monthly / 100 + 0.35 * tickets
    churned = 1 if rng.random() < 1 / (1 + 2.718281828 ** -score) else 0
    rows.append({"customer": f"{a.region}-{i}", "tenure": tenure, "monthly": monthly, "tickets": tickets, "churned": churned})

path = a.out
write_rows(path, rows, ["customer", "tenure", "monthly", "tickets", "churned"])
print(f"extracted {len(rows)} rows for {a.date} ({a.region}) into {path}")
emit(rows=len(rows))
